"""Train/test splits that keep every speaker on one side (and the random split, to show the leak)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, ParameterError
from .base import Item

__all__ = ["Split", "load_fold_file", "speaker_folds", "leave_one_corpus_out", "random_split", "check_speaker_independent"]


@dataclass(frozen=True)
class Split:
    """One train/test partition of a list of items, by index."""

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]


def check_speaker_independent(items: Sequence[Item], split: Split) -> None:
    """Raise :class:`DataError` if any speaker is on both sides of ``split``."""
    shared = {items[i].speaker for i in split.train} & {items[i].speaker for i in split.test}
    if shared:
        raise DataError(f"split {split.name}: speakers in both train and test: {sorted(shared)[:5]}")


def load_fold_file(path: str | os.PathLike, items: Sequence[Item], *, corpus: str) -> list[Split]:
    """Folds from a ``{"test_actors": {"1": [ids...]}}`` file, as in ``../shared/data/splits``."""
    try:
        spec = json.loads(Path(path).read_text())
        folds = spec["test_actors"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a fold file with 'test_actors' ({exc})") from None
    out = []
    for fold, actors in sorted(folds.items(), key=lambda kv: int(kv[0])):
        test_speakers = {f"{corpus}:{int(a):02d}" if corpus == "ravdess" else f"{corpus}:{a}" for a in actors}
        test = tuple(i for i, it in enumerate(items) if it.speaker in test_speakers)
        train = tuple(i for i, it in enumerate(items) if it.speaker not in test_speakers and it.corpus == corpus)
        if not test:
            raise DataError(f"{path}: fold {fold} matches no items of corpus {corpus!r}")
        split = Split(f"fold{fold}", train, test)
        check_speaker_independent(items, split)
        out.append(split)
    return out


def speaker_folds(items: Sequence[Item], *, n_folds: int = 5, seed: int = 0) -> list[Split]:
    """Group k-fold over speakers: each speaker's items are in exactly one test fold."""
    speakers = sorted({it.speaker for it in items})
    if len(speakers) < n_folds:
        raise ParameterError(f"{len(speakers)} speakers cannot make {n_folds} speaker-independent folds")
    random.Random(seed).shuffle(speakers)
    groups = [set(speakers[k::n_folds]) for k in range(n_folds)]
    out = []
    for k, group in enumerate(groups):
        test = tuple(i for i, it in enumerate(items) if it.speaker in group)
        train = tuple(i for i, it in enumerate(items) if it.speaker not in group)
        out.append(Split(f"fold{k + 1}", train, test))
    return out


def leave_one_corpus_out(items: Sequence[Item]) -> list[Split]:
    """Train on all corpora but one, test on it; one split per corpus."""
    corpora = sorted({it.corpus for it in items})
    if len(corpora) < 2:
        raise ParameterError("leave-one-corpus-out needs at least two corpora")
    return [
        Split(f"heldout-{c}",
              tuple(i for i, it in enumerate(items) if it.corpus != c),
              tuple(i for i, it in enumerate(items) if it.corpus == c))
        for c in corpora
    ]


def random_split(items: Sequence[Item], *, test_size: float = 0.2, seed: int = 0) -> Split:
    """The source projects' random split: speakers leak into both sides. Reported only to show the inflation."""
    idx = list(range(len(items)))
    random.Random(seed).shuffle(idx)
    n_test = int(round(len(idx) * test_size))
    return Split("random", tuple(sorted(idx[n_test:])), tuple(sorted(idx[:n_test])))
