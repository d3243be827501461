"""CSV manifests: ``path,label[,speaker][,corpus]`` with paths relative to the CSV's folder."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..errors import DataError
from ..labels import EMOTIONS
from .base import Corpus, Item, Skipped

__all__ = ["load_manifest", "write_manifest"]

_ALIASES = {"fear": "fearful", "surprise": "surprised", "anger": "angry", "happiness": "happy",
            "sadness": "sad", "disgusted": "disgust"}


def load_manifest(csv_path: str | os.PathLike, *, require_labels: bool = True) -> Corpus:
    """Read a manifest CSV with columns ``path`` and ``label`` (optional ``speaker``, ``corpus``, ``gender``).

    Unknown labels and missing files are reported in :attr:`Corpus.skipped`, never dropped silently.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: manifest not found")
    base = csv_path.parent
    items, skipped = [], []
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = {f.strip().lower() for f in reader.fieldnames or []}
        need = {"path", "label"} if require_labels else {"path"}
        if not need <= fields:
            raise DataError(f"{csv_path}: manifest needs the columns {', '.join(sorted(need))} (has {', '.join(sorted(fields)) or 'none'})")
        for row in reader:
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            path = Path(row["path"])
            path = path if path.is_absolute() else base / path
            raw = row.get("label", "").lower()
            label = _ALIASES.get(raw, raw)
            if require_labels and label not in EMOTIONS:
                skipped.append(Skipped(str(path), f"unknown label {raw!r}"))
                continue
            if not path.exists():
                skipped.append(Skipped(str(path), "file not found"))
                continue
            corpus = row.get("corpus") or "manifest"
            # Without a speaker column each file counts as its own speaker (the only safe guess).
            speaker = row.get("speaker") or path.stem
            items.append(Item(str(path), label, speaker if ":" in speaker else f"{corpus}:{speaker}",
                              corpus, gender=row.get("gender") or None))
    return Corpus(csv_path.stem, str(csv_path), items, skipped)


def write_manifest(items: list[Item], csv_path: str | os.PathLike) -> None:
    """Write ``items`` as a manifest (absolute paths)."""
    with Path(csv_path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "speaker", "corpus", "gender"])
        for i in items:
            w.writerow([os.path.abspath(i.path), i.label, i.speaker, i.corpus, i.gender or ""])
