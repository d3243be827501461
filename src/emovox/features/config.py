"""The one ``to_dict``/``from_dict`` of the frontend settings a model directory stores.

A frontend config is a frozen dataclass that mixes in :class:`FrontendConfig` and names its
``TYPE``; ``model.json`` holds it as ``{"type": TYPE, **fields}``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar, TypeVar

from ..errors import ParameterError

__all__ = ["FrontendConfig"]

_C = TypeVar("_C", bound="FrontendConfig")


class FrontendConfig:
    """Mixin for a frozen dataclass of frontend settings, stored as ``{"type": TYPE, ...}``.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo(FrontendConfig):
    ...     TYPE: ClassVar[str] = "demo"
    ...     n_mels: int = 40
    >>> Demo().to_dict()
    {'type': 'demo', 'n_mels': 40}
    >>> Demo.from_dict({"type": "demo", "n_mels": 64})
    Demo(n_mels=64)
    >>> Demo.from_dict({"n_mel": 64})
    Traceback (most recent call last):
    ...
    emovox.errors.ParameterError: demo frontend: unknown key(s) n_mel
    """

    #: The ``frontend.type`` of ``model.json``.
    TYPE: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]  # set by @dataclass on the subclass

    def to_dict(self) -> dict:
        return {"type": self.TYPE, **asdict(self)}

    @classmethod
    def from_dict(cls: type[_C], d: dict) -> _C:
        """Inverse of :meth:`to_dict`; an unknown key is an error, not silently dropped."""
        d = {k: v for k, v in d.items() if k != "type"}
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ParameterError(f"{cls.TYPE} frontend: unknown key(s) {', '.join(unknown)}")
        return cls(**d)
