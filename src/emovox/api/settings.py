"""Server settings: one frozen dataclass, filled from ``EMOVOX_*`` environment variables.

``emovox serve`` writes its options into the environment so that every uvicorn worker process
builds the same :class:`Settings` with :meth:`Settings.from_env`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

from ..errors import ParameterError

__all__ = ["Settings"]

_MB = 1024 * 1024


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def _number(name: str, default: float, *, kind: type = float, minimum: float = 0.0) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ParameterError(f"${name}={raw!r}: not a number") from None
    if value < minimum:
        raise ParameterError(f"${name}={raw!r}: must be >= {minimum}")
    return value


def _flag(name: str) -> bool:
    return (_env(name) or "").lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """What the API server needs to know.

    Attributes
    ----------
    model_dir : str or None
        Model directory (None: the shipped model). Env ``EMOVOX_MODEL``.
    int8 : bool
        Use ``model.int8.onnx``. Env ``EMOVOX_INT8=1``.
    threads : int
        ONNX Runtime intra-op threads per inference call. Env ``EMOVOX_THREADS`` (default 1:
        requests run in parallel instead, see ``max_concurrency``).
    max_concurrency : int
        Inference calls running at once per worker; the rest wait. Env ``EMOVOX_MAX_CONCURRENCY``
        (default: the number of CPU cores).
    max_upload_bytes : int
        Larger bodies get 413. Env ``EMOVOX_MAX_UPLOAD_MB`` (default 25).
    max_duration : float
        Longer audio gets 413 (seconds). Env ``EMOVOX_MAX_DURATION`` (default 600).
    request_timeout : float
        Seconds an inference request may take, queueing included, before 504.
        Env ``EMOVOX_REQUEST_TIMEOUT`` (default 60).
    api_key : str or None
        If set, every ``/v1`` route except ``/v1/health`` needs header ``X-API-Key``.
        Env ``EMOVOX_API_KEY``.
    cors_origins : tuple of str
        Allowed CORS origins; empty (the default) means no CORS headers at all.
        Env ``EMOVOX_CORS_ORIGINS`` (comma-separated).
    stream_update_seconds : float
        A ``/v1/stream`` update is sent for every this many seconds of audio received.
    max_streams : int
        Concurrent ``/v1/stream`` connections per worker. Env ``EMOVOX_MAX_STREAMS`` (default 16).
    max_stream_seconds : float
        Audio one stream may send. Env ``EMOVOX_MAX_STREAM_SECONDS`` (default 4 hours).
    stream_idle_timeout : float
        A stream that sends nothing for this long is closed. Env ``EMOVOX_STREAM_IDLE`` (60 s).
    """

    model_dir: str | None = None
    int8: bool = False
    threads: int = 1
    max_concurrency: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_upload_bytes: int = 25 * _MB
    max_duration: float = 600.0
    request_timeout: float = 60.0
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    stream_update_seconds: float = 1.0
    max_streams: int = 16
    max_stream_seconds: float = 4 * 3600.0
    stream_idle_timeout: float = 60.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                raise ParameterError(f"setting {f.name} must be > 0, got {value}")

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Settings from the ``EMOVOX_*`` environment, then ``overrides``.

        Raises
        ------
        ParameterError
            A variable that is not a valid number.
        """
        base = cls()
        origins = tuple(o.strip() for o in (_env("EMOVOX_CORS_ORIGINS") or "").split(",") if o.strip())
        values = {
            "model_dir": _env("EMOVOX_MODEL"),
            "int8": _flag("EMOVOX_INT8"),
            "threads": int(_number("EMOVOX_THREADS", base.threads, kind=int, minimum=1)),
            "max_concurrency": int(_number("EMOVOX_MAX_CONCURRENCY", base.max_concurrency, kind=int, minimum=1)),
            "max_upload_bytes": int(_number("EMOVOX_MAX_UPLOAD_MB", base.max_upload_bytes / _MB, minimum=0.001) * _MB),
            "max_duration": _number("EMOVOX_MAX_DURATION", base.max_duration, minimum=0.1),
            "request_timeout": _number("EMOVOX_REQUEST_TIMEOUT", base.request_timeout, minimum=0.1),
            "api_key": _env("EMOVOX_API_KEY"),
            "cors_origins": origins,
            "max_streams": int(_number("EMOVOX_MAX_STREAMS", base.max_streams, kind=int, minimum=1)),
            "max_stream_seconds": _number("EMOVOX_MAX_STREAM_SECONDS", base.max_stream_seconds, minimum=1),
            "stream_idle_timeout": _number("EMOVOX_STREAM_IDLE", base.stream_idle_timeout, minimum=1),
        }
        return replace(base, **{**values, **overrides})

    def public(self) -> dict:
        """The limits a client may see (no key)."""
        return {
            "max_upload_bytes": self.max_upload_bytes,
            "max_duration": self.max_duration,
            "request_timeout": self.request_timeout,
            "stream_update_seconds": self.stream_update_seconds,
            "auth": self.api_key is not None,
        }
