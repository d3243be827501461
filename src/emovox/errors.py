"""One small exception family. Messages name the thing, the reason and, where possible, the fix.

The CLI maps :attr:`EmovoxError.exit_code` to its exit status and the API maps the same
classes to 4xx responses, so bad input never surfaces as a traceback or a 500.
"""

from __future__ import annotations

__all__ = [
    "EmovoxError",
    "ParameterError",
    "AudioError",
    "DataError",
    "ModelError",
    "MissingDependencyError",
]


class EmovoxError(Exception):
    """Base class of every error emovox raises on purpose."""

    exit_code = 1


class ParameterError(EmovoxError, ValueError):
    """An argument has a wrong value or type (a usage error)."""

    exit_code = 2


class AudioError(EmovoxError):
    """Audio that cannot be used: missing, empty, corrupt, non-audio, unsupported or non-finite."""

    exit_code = 3


class DataError(EmovoxError):
    """A corpus, manifest or feature table that cannot be used as given."""

    exit_code = 3


class ModelError(EmovoxError):
    """A model file that is missing, corrupt or does not match its card."""

    exit_code = 1


class MissingDependencyError(EmovoxError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    exit_code = 1
