"""Cross-fitted teacher probabilities for knowledge distillation (a recipe's ``[distill]`` section).

A neural student learns from its labels and from a teacher's class probabilities on its training
clips. Those probabilities are *cross-fitted*: the student's training clips are split into
speaker-grouped folds, and each fold's targets come from a teacher trained on the other folds,
so no clip's target comes from a teacher that heard its speaker (a teacher that did would mostly
echo the label back).

Two kinds of teacher:

- a classical recipe (e.g. ``egemaps_logreg``): features once, one pipeline per fold
  (:func:`emovox.models.distill.cross_fitted_proba`);
- a Whisper recipe (e.g. ``whisper_default``, the shipped default model's): one fine-tuned
  :class:`~emovox.models.whisper_ser.WhisperSER` per fold on the frame cache. A fold takes
  minutes, so each one is stored under ``WORKDIR/teacher/<key>/fold<k>.npz`` when it lands: a
  re-run resumes, and the folds can run as separate one-thread processes beside each other::

      python -m emovox.evaluation.teachers --recipe tiny --out runs/tiny --fold 0 --threads 1 &
      python -m emovox.evaluation.teachers --recipe tiny --out runs/tiny --fold 1 --threads 1

  ``emovox train --recipe tiny --out runs/tiny`` then reads the stored folds.

``[distill] teacher_train`` overrides the teacher recipe's ``[train]`` keys (e.g. fewer draws per
fold than the shipped model's recipe, which trains on all speakers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._threads import thread_limit
from ..corpora import Item, default_data_dir
from ..errors import EmovoxError, ParameterError

__all__ = ["teacher_recipe", "speaker_folds_of", "teacher_targets", "main"]


def teacher_recipe(distill: dict) -> dict:
    """The parsed teacher recipe of a ``[distill]`` section, with its ``teacher_train`` overrides."""
    from .recipe import load_recipe

    teacher = load_recipe(distill["teacher"])
    if teacher["model"]["kind"] not in ("classical", "whisper"):
        raise ParameterError(f"[distill] teacher {teacher['name']!r} must be a classical or whisper recipe, "
                             f"not {teacher['model']['kind']!r}")
    overrides = dict(distill.get("teacher_train") or {})
    if overrides:
        if teacher["model"]["kind"] != "whisper":
            raise ParameterError("[distill] teacher_train applies to whisper teachers only")
        teacher = {**teacher, "train": {**teacher["train"], **overrides}}
    return teacher


def speaker_folds_of(speakers: Sequence[str], folds: int) -> list[np.ndarray]:
    """Positions of each of ``folds`` speaker-grouped folds (GroupKFold: deterministic, balanced sizes)."""
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(speakers)
    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        raise ParameterError("distillation needs at least two speakers to cross-fit the teacher")
    dummy = np.zeros(len(groups))
    return [te for _, te in GroupKFold(n_splits=min(folds, n_groups)).split(dummy, dummy, groups)]


def _key(teacher: dict, items: Sequence[Item], fit_idx: Sequence[int], labels: Sequence[str], folds: int) -> str:
    from .runner import recipe_hash

    h = hashlib.sha256(recipe_hash(teacher).encode())
    h.update(json.dumps([[items[i].path for i in fit_idx], list(labels), folds]).encode())
    return h.hexdigest()[:16]


def teacher_targets(distill: dict, items: Sequence[Item], fit_idx: Sequence[int], labels: Sequence[str], *,
                    workdir: str | os.PathLike | None = None, threads: int | None = None,
                    progress: bool = True, only_fold: int | None = None,
                    teacher_X: np.ndarray | None = None) -> np.ndarray | None:
    """Cross-fitted teacher probabilities ``[len(fit_idx), len(labels)]`` of the clips ``items[fit_idx]``.

    Parameters
    ----------
    distill : dict
        A recipe's parsed ``[distill]`` section.
    items, fit_idx : the protocol's items and the student's training indices into them.
    labels : the student's classes (the columns, in order).
    workdir : where a Whisper teacher's folds are stored (resumable); ``None`` keeps nothing.
    only_fold : compute (or find) this fold alone and return ``None``: one of parallel processes.
    teacher_X : a classical teacher's feature rows for ``items`` (all of them).
    """
    teacher = teacher_recipe(distill)
    folds = int(distill["folds"])
    fit_idx = list(fit_idx)
    speakers = [items[i].speaker for i in fit_idx]
    if teacher["model"]["kind"] == "classical":
        from ..models.distill import cross_fitted_proba

        if teacher_X is None:
            raise ParameterError("a classical teacher needs its feature rows (teacher_X)")
        return cross_fitted_proba(teacher, teacher_X[fit_idx], [items[i].label for i in fit_idx], speakers,
                                  list(labels), folds=folds)
    parts = speaker_folds_of(speakers, folds)
    store = (Path(workdir) / "teacher" / _key(teacher, items, fit_idx, labels, folds)
             if workdir is not None else None)
    out = np.full((len(fit_idx), len(labels)), np.nan)
    todo = []
    for k, part in enumerate(parts):
        f = store / f"fold{k}.npz" if store is not None else None
        if f is not None and f.is_file():
            saved = np.load(f)
            if np.array_equal(saved["positions"], part):
                out[part] = saved["proba"]
                continue
        if only_fold is None or only_fold == k:
            todo.append(k)
    if only_fold is not None and only_fold >= len(parts):
        raise ParameterError(f"--fold {only_fold}: the teacher has {len(parts)} folds (0-{len(parts) - 1})")
    if todo:
        _whisper_folds(teacher, items, fit_idx, labels, parts, todo, out, store, threads=threads, progress=progress)
    if only_fold is not None:
        return None
    if np.isnan(out).any():
        raise EmovoxError("teacher targets incomplete")  # every fold was either stored or computed above
    return out


def _whisper_folds(teacher: dict, items: Sequence[Item], fit_idx: list[int], labels: Sequence[str],
                   parts: list[np.ndarray], todo: list[int], out: np.ndarray, store: Path | None, *,
                   threads: int | None, progress: bool) -> None:
    """Train one Whisper teacher per fold in ``todo`` on the other folds; fill ``out`` and store each fold."""
    from .protocols import Fold
    from .whisper_backend import WhisperBackend

    used = sorted(set(fit_idx))
    local = {g: j for j, g in enumerate(used)}  # the backend caches frames of the student's training clips only
    backend = WhisperBackend(teacher, [items[i] for i in used], quick=False, progress=progress, workdir=None,
                             threads=threads)
    for k in todo:
        held = set(parts[k].tolist())
        train = tuple(local[fit_idx[p]] for p in range(len(fit_idx)) if p not in held)
        test = [local[fit_idx[p]] for p in parts[k]]
        fold = Fold(f"teacher{k}", train, tuple(test), (), tuple(labels))
        with thread_limit(threads):
            model, _ = backend.fit(fold, fold.name)
            proba, classes = backend.predict_proba(model, test)
        from ..models.classical import align_proba

        proba = align_proba(np.asarray(proba, dtype=float), classes, list(labels))
        out[parts[k]] = proba
        y = np.array([list(labels).index(items[fit_idx[p]].label) for p in parts[k]])
        ua = np.mean([np.mean(proba[y == c].argmax(1) == c) for c in np.unique(y)])
        if progress:
            print(f"teacher fold {k}: {len(test)} clips of {len({items[fit_idx[p]].speaker for p in parts[k]})} "
                  f"speakers, UA {100 * ua:.1f}%", file=sys.stderr, flush=True)
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)
            tmp = store / f"fold{k}.tmp.npz"
            np.savez(tmp, positions=parts[k], proba=proba, ua=ua)
            os.replace(tmp, store / f"fold{k}.npz")


def main(argv: list[str] | None = None) -> int:
    """Compute one Whisper-teacher fold of ``emovox train --recipe R --out DIR`` (for parallel processes)."""
    from .protocols import load_items, validation_protocol
    from .recipe import load_recipe

    ap = argparse.ArgumentParser(prog="python -m emovox.evaluation.teachers", description=main.__doc__)
    ap.add_argument("--recipe", required=True, help="the student's recipe (with a [distill] section)")
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--out", required=True, help="the student's `emovox train --out` folder")
    ap.add_argument("--fold", type=int, required=True, help="the teacher fold to compute (0-based)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe)
        if not recipe.get("distill"):
            raise ParameterError(f"recipe {recipe['name']!r} has no [distill] section")
        items = load_items(data_dir=args.data, corpora=recipe["data"]["corpora"])
        data = validation_protocol(items, view=recipe["data"]["view"], seed=int(recipe.get("seed", 0)))
        fold = data.folds[0]
        fit = list(fold.fit)
        labels = sorted({data.items[i].label for i in fit})
        teacher_targets(recipe["distill"], data.items, fit, labels, workdir=args.out, threads=args.threads,
                        only_fold=args.fold)
    except EmovoxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
