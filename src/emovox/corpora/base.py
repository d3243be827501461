"""The corpus item, the loader contract and the registry every corpus loader joins."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DataError, ParameterError

__all__ = ["Item", "Skipped", "Corpus", "register", "LOADERS", "load_corpus", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".webm", ".mp4"})


@dataclass(frozen=True)
class Item:
    """One labelled recording.

    ``label`` is a canonical emotion (:data:`emovox.labels.EMOTIONS`); ``speaker`` is unique
    across corpora (prefixed with the corpus name) so speaker-independent splits can mix corpora.
    """

    path: str
    label: str
    speaker: str
    corpus: str
    gender: str | None = None  # "female" | "male" | None where unknown
    text: str | None = None  # sentence or word id
    intensity: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


@dataclass(frozen=True)
class Skipped:
    """A file a loader found but could not parse; reported, never dropped silently."""

    path: str
    reason: str


@dataclass
class Corpus:
    """The items a loader parsed, and the files it skipped with the reason."""

    name: str
    root: str
    items: list[Item]
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def speakers(self) -> list[str]:
        return sorted({i.speaker for i in self.items})


Loader = Callable[[Path], Corpus]
LOADERS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    """Class the decorated function as the loader of corpus ``name``."""

    def deco(fn: Loader) -> Loader:
        LOADERS[name] = fn
        return fn

    return deco


def audio_files(root: Path) -> Iterable[Path]:
    """Audio files under ``root``, sorted, so every loader is deterministic."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                yield Path(dirpath) / name


def load_corpus(name: str, root: str | os.PathLike) -> Corpus:
    """Load corpus ``name`` (``ravdess``, ``tess``, ``savee``, ``crema-d``, ``emodb``, ``folder``) from ``root``.

    Examples
    --------
    >>> corpus = load_corpus("ravdess", "../shared/data/ravdess")  # doctest: +SKIP
    >>> len(corpus), len(corpus.speakers)  # doctest: +SKIP
    (1440, 24)
    """
    key = name.lower().replace("_", "-")
    if key == "cremad":
        key = "crema-d"
    if key not in LOADERS:
        raise ParameterError(f"unknown corpus {name!r}; choose one of {', '.join(sorted(LOADERS))}")
    path = Path(root)
    if not path.is_dir():
        raise DataError(f"{path}: corpus folder not found")
    return LOADERS[key](path)
