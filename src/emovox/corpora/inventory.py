"""Find the corpora under a data folder and count what they hold."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from ..errors import DataError
from ..labels import EMOTIONS
from .base import Corpus, Skipped, load_corpus

__all__ = ["default_data_dir", "discover", "load_all", "Inventory", "inventory", "KNOWN_FOLDERS"]

#: Folder names recognised under a data root, per corpus.
KNOWN_FOLDERS: dict[str, tuple[str, ...]] = {
    "ravdess": ("ravdess", "RAVDESS"),
    "tess": ("tess", "TESS"),
    "savee": ("savee", "SAVEE"),
    "crema-d": ("crema-d", "cremad", "CREMA-D", "CREMA_D"),
    "emodb": ("emodb", "EmoDB", "emo-db"),
}


def default_data_dir() -> str:
    """The data folder when none is given: ``$EMOVOX_DATA``, else ``../shared/data`` relative to the working directory."""
    return os.environ.get("EMOVOX_DATA") or str(Path("..") / "shared" / "data")


def discover(data_dir: str | os.PathLike) -> dict[str, Path]:
    """Map corpus names to their folders under ``data_dir``."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found (set --data or $EMOVOX_DATA)")
    found = {}
    for name, folders in KNOWN_FOLDERS.items():
        for folder in folders:
            if (root / folder).is_dir():
                found[name] = root / folder
                break
    return found


def load_all(data_dir: str | os.PathLike, names: list[str] | None = None) -> dict[str, Corpus]:
    """Load every corpus found under ``data_dir`` (or just ``names``)."""
    found = discover(data_dir)
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            raise DataError(f"{data_dir}: corpus folder(s) not found: {', '.join(missing)}")
        found = {n: found[n] for n in names}
    return {name: load_corpus(name, path) for name, path in found.items()}


@dataclass
class Inventory:
    """Per-corpus counts: clips, speakers, hours, labels; and the files that could not be parsed."""

    corpus: str
    clips: int
    speakers: int
    hours: float
    labels: dict[str, int]
    genders: dict[str, int]
    skipped: list[Skipped] = field(default_factory=list)


def _duration(path: str) -> float:
    try:
        i = sf.info(path)
        return i.frames / i.samplerate
    except (sf.LibsndfileError, RuntimeError):
        return 0.0


def inventory(corpus: Corpus, *, durations: bool = True) -> Inventory:
    """Count one corpus; reading durations opens each file's header (no decoding)."""
    hours = sum(_duration(i.path) for i in corpus.items) / 3600 if durations else float("nan")
    labels = Counter(i.label for i in corpus.items)
    return Inventory(
        corpus.name, len(corpus.items), len(corpus.speakers), hours,
        {e: labels[e] for e in EMOTIONS if labels[e]},
        dict(Counter(i.gender or "unknown" for i in corpus.items)),
        list(corpus.skipped),
    )
