"""The evaluation protocols: which items, which label view, which train/test folds.

1. ``ravdess-6fold``  RAVDESS 8-class, speaker-independent 6-fold (``splits/ravdess_6fold_by_actor.json``)
2. ``crema-d-5fold``  CREMA-D 6-class, speaker-independent 5-fold (``splits/crema-d_5fold_by_actor.json``)
3. ``loco``           leave-one-corpus-out over RAVDESS, TESS, SAVEE, CREMA-D on the 7-class view;
   train and test restricted to the labels the held-out corpus has
4. ``ravdess-random`` the source projects' random 80/20 split of RAVDESS (speakers leak; shown
   only to measure the inflation)

Every fold also carries a validation set for early stopping, carved from the TRAIN speakers only.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..corpora import Item, load_all, load_fold_file
from ..corpora.splits import Split, check_speaker_independent, leave_one_corpus_out, random_split
from ..errors import DataError, ParameterError
from ..labels import get_view

__all__ = ["Fold", "ProtocolData", "PROTOCOLS", "protocol_key", "build_protocol", "map_items",
           "carve_validation", "check_fold", "load_items", "validation_protocol"]

#: key -> (number, one-line title, speaker independent?)
PROTOCOLS: dict[str, tuple[str, str, bool]] = {
    "ravdess-6fold": ("1", "RAVDESS 8-class, speaker-independent 6-fold", True),
    "crema-d-5fold": ("2", "CREMA-D 6-class, speaker-independent 5-fold", True),
    "loco": ("3", "Leave-one-corpus-out (RAVDESS, TESS, SAVEE, CREMA-D), 7-class view", True),
    "ravdess-random": ("4", "RAVDESS 8-class, random 80/20 split (speakers leak: inflated)", False),
    "ravdess-6fold-plus": ("1+", "RAVDESS 8-class, protocol 1's folds, training adds TESS, SAVEE and CREMA-D", True),
}


@dataclass(frozen=True)
class Fold:
    """One train/test partition, by index into :attr:`ProtocolData.items`.

    ``val`` is a subset of ``train`` (whole speakers where the protocol is speaker-independent),
    for early stopping; ``labels`` are the classes this fold is trained and scored on.
    """

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]
    val: tuple[int, ...]
    labels: tuple[str, ...]

    @property
    def fit(self) -> tuple[int, ...]:
        """The training indices without the validation ones."""
        held = set(self.val)
        return tuple(i for i in self.train if i not in held)


@dataclass
class ProtocolData:
    """A protocol instantiated on the corpora: items (labels mapped to the view) and folds."""

    key: str
    title: str
    view: str
    items: list[Item]
    folds: list[Fold]
    speaker_independent: bool
    number: str = ""


def protocol_key(name: str | int) -> str:
    """Map ``1``..``4``, ``1+`` or a protocol name to its key."""
    text = str(name).strip().lower()
    for key, (number, _, _) in PROTOCOLS.items():
        if text in (key, number):
            return key
    raise ParameterError(f"unknown protocol {name!r}; choose 1, 1+, 2, 3, 4 or one of {', '.join(PROTOCOLS)}")


def map_items(items: Sequence[Item], view: str) -> list[Item]:
    """Items whose label the view keeps, relabelled to the view's classes (e.g. calm -> neutral)."""
    v = get_view(view)
    out = []
    for it in items:
        label = v.map(it.label)
        if label is not None:
            out.append(dataclasses.replace(it, label=label))
    return out


def carve_validation(items: Sequence[Item], train: Sequence[int], *, fraction: float = 0.15,
                     seed: int = 0, by_speaker: bool = True) -> tuple[int, ...]:
    """Pick a validation subset of ``train``: whole speakers (at least one, never all) where possible.

    With fewer than three training speakers, or ``by_speaker=False``, a seeded random
    ``fraction`` of the items is taken instead.
    """
    rng = random.Random(seed)
    speakers = sorted({items[i].speaker for i in train})
    if by_speaker and len(speakers) >= 3:
        # Keep each corpus represented: draw the validation speakers per corpus.
        chosen: set[str] = set()
        by_corpus: dict[str, list[str]] = {}
        for s in speakers:
            by_corpus.setdefault(s.split(":", 1)[0], []).append(s)
        for group in by_corpus.values():
            if len(group) >= 3:
                chosen.update(rng.sample(group, max(1, round(fraction * len(group)))))
        if not chosen:
            chosen.update(rng.sample(speakers, max(1, round(fraction * len(speakers)))))
        return tuple(i for i in train if items[i].speaker in chosen)
    pool = list(train)
    rng.shuffle(pool)
    return tuple(sorted(pool[: max(1, round(fraction * len(pool)))]))


def check_fold(items: Sequence[Item], fold: Fold) -> None:
    """Raise :class:`DataError` if a speaker is in train and test, or validation leaves train."""
    check_speaker_independent(items, Split(fold.name, fold.train, fold.test))
    if not set(fold.val) <= set(fold.train):
        raise DataError(f"fold {fold.name}: validation items outside the training part")


def _splits_dir(data_dir: Path) -> Path:
    return data_dir / "splits"


def _folds_from(items: list[Item], splits: list[Split], *, seed: int, by_speaker: bool,
                restrict_to_test_labels: bool = False) -> list[Fold]:
    out = []
    for k, s in enumerate(splits):
        train, test = s.train, s.test
        labels = sorted({items[i].label for i in test} | ({items[i].label for i in train} if not restrict_to_test_labels else set()))
        if restrict_to_test_labels:
            train = tuple(i for i in train if items[i].label in labels)
        val = carve_validation(items, train, seed=seed + k, by_speaker=by_speaker)
        out.append(Fold(s.name, tuple(train), tuple(test), val, tuple(labels)))
    return out


def build_protocol(name: str | int, data_dir: str | os.PathLike, *, seed: int = 0) -> ProtocolData:
    """Instantiate protocol ``name`` (1-4 or its key) on the corpora under ``data_dir``.

    Returns
    -------
    ProtocolData
        Items relabelled to the protocol's view and the folds; folds of speaker-independent
        protocols are checked with :func:`check_fold`.

    Examples
    --------
    >>> p = build_protocol(1, "../shared/data")  # doctest: +SKIP
    >>> len(p.items), len(p.folds), p.folds[0].labels[:3]  # doctest: +SKIP
    (1440, 6, ('angry', 'calm', 'disgust'))
    """
    key = protocol_key(name)
    number, title, independent = PROTOCOLS[key]
    root = Path(data_dir)
    view_order = {"ravdess-6fold": "8class", "crema-d-5fold": "6class", "loco": "7class", "ravdess-random": "8class",
                  "ravdess-6fold-plus": "8class"}
    view = view_order[key]
    if key in ("ravdess-6fold", "ravdess-random"):
        items = map_items(load_all(root, ["ravdess"])["ravdess"].items, view)
    elif key == "crema-d-5fold":
        items = map_items(load_all(root, ["crema-d"])["crema-d"].items, view)
    elif key == "ravdess-6fold-plus":
        corpora = load_all(root, ["ravdess", "tess", "savee", "crema-d"])
        items = map_items([it for name in ("ravdess", "tess", "savee", "crema-d") for it in corpora[name].items], view)
    else:
        corpora = load_all(root, ["ravdess", "tess", "savee", "crema-d"])
        items = map_items([it for c in corpora.values() for it in c.items], view)
    if not items:
        raise DataError(f"{root}: no items for protocol {key}")
    if key == "ravdess-6fold":
        splits = load_fold_file(_splits_dir(root) / "ravdess_6fold_by_actor.json", items, corpus="ravdess")
        folds = _folds_from(items, splits, seed=seed, by_speaker=True)
    elif key == "ravdess-6fold-plus":
        # the other corpora's speakers never occur in RAVDESS: all of them join every fold's training part
        others = tuple(i for i, it in enumerate(items) if it.corpus != "ravdess")
        splits = [Split(s.name, s.train + others, s.test) for s in
                  load_fold_file(_splits_dir(root) / "ravdess_6fold_by_actor.json", items, corpus="ravdess")]
        folds = _folds_from(items, splits, seed=seed, by_speaker=True, restrict_to_test_labels=True)
    elif key == "crema-d-5fold":
        splits = load_fold_file(_splits_dir(root) / "crema-d_5fold_by_actor.json", items, corpus="crema-d")
        folds = _folds_from(items, splits, seed=seed, by_speaker=True)
    elif key == "loco":
        folds = _folds_from(items, leave_one_corpus_out(items), seed=seed, by_speaker=True,
                            restrict_to_test_labels=True)
    else:
        folds = _folds_from(items, [random_split(items, test_size=0.2, seed=seed)], seed=seed, by_speaker=False)
    if independent:
        for fold in folds:
            check_fold(items, fold)
    return ProtocolData(key, title, view, items, folds, independent, number)


def load_items(*, data_dir: str | os.PathLike | None = None, corpora: Sequence[str] = (),
               manifest: str | os.PathLike | None = None) -> list[Item]:
    """Items of a manifest CSV, or of ``corpora`` under ``data_dir`` (``"folder"``: ``data_dir`` itself
    is a folder-per-label layout)."""
    from ..corpora import load_corpus, load_manifest

    if manifest is not None:
        corpus = load_manifest(manifest)
        items = corpus.items
    elif list(corpora) == ["folder"]:
        if data_dir is None:
            raise ParameterError("give the folder-per-label layout with --data")
        items = load_corpus("folder", data_dir).items
    else:
        if data_dir is None:
            raise ParameterError("give a data folder (--data) or a manifest (--manifest)")
        items = [it for c in load_all(data_dir, list(corpora)).values() for it in c.items]
    if not items:
        raise DataError(f"no labelled audio found in {manifest or data_dir}")
    return items


def validation_protocol(items: Sequence[Item], *, view: str, seed: int = 0, fraction: float = 0.15) -> ProtocolData:
    """One fold for ``emovox train``: fit on most speakers, test (and early-stop) on held-out ones.

    ``test`` and ``val`` are the same held-out speakers; ``train`` excludes them.
    """
    mapped = map_items(items, view)
    if not mapped:
        raise DataError(f"no item has a label of the {view} view")
    everything = range(len(mapped))
    val = carve_validation(mapped, everything, fraction=fraction, seed=seed)
    held = set(val)
    train = tuple(i for i in everything if i not in held)
    labels = tuple(sorted({mapped[i].label for i in train}))
    missing = sorted({mapped[i].label for i in val} - set(labels))
    if missing:
        raise DataError(f"labels {missing} occur only in the validation speakers; add data for them")
    n_speakers = len({it.speaker for it in mapped})
    title = f"validation split: {len(val)} clips of held-out speakers ({n_speakers} speakers in all)"
    return ProtocolData("validation", title, view, mapped, [Fold("validation", train, val, val, labels)],
                        n_speakers >= 3, "–")
