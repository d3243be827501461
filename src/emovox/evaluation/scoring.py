"""Score a saved model directory on labelled items (what ``emovox evaluate`` does).

A neural model directory (``model.onnx`` on log-mel) is run through :class:`emovox.inference.Predictor`;
a classical one (``model.json`` with ``"kind": "classical"``) through its joblib pipeline on the
recorded feature set. Test labels are first mapped through the model's label view (``calm`` →
``neutral`` for a 7-class model); if the test set has fewer classes than the model, predictions
are restricted to the test set's classes and renormalised.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..corpora import Item
from ..errors import DataError, ModelError
from ..labels import VIEWS, LabelView
from .metrics import classification_metrics, summarize_folds

__all__ = ["view_for_labels", "map_to_model", "score_model", "JSON_KEYS"]

#: What ``emovox evaluate --json`` prints.
JSON_KEYS = ("ua", "wa", "macro_f1", "per_class", "confusion", "labels", "n")


def view_for_labels(labels: Sequence[str], name: str | None = None) -> LabelView:
    """The label view a model was trained on: its recorded ``name`` (the model may know only some of
    the view's classes), else the one whose classes are exactly ``labels``, else the identity."""
    if name in VIEWS and set(labels) <= set(VIEWS[name].classes):
        return VIEWS[name]
    for view in VIEWS.values():
        if set(view.classes) == set(labels):
            return view
    return LabelView("model", tuple(labels), {x: x for x in labels})


def map_to_model(items: Sequence[Item], view: LabelView, model_labels: Sequence[str]) -> tuple[list[Item], int]:
    """Items relabelled through ``view`` and kept only if the model knows the label; also the number dropped."""
    import dataclasses

    out = []
    for it in items:
        label = view.map(it.label)
        if label is not None and label in model_labels:
            out.append(dataclasses.replace(it, label=label))
    return out, len(items) - len(out)


def _model_meta(model_dir: Path | None) -> dict:
    from ..models.directory import default_model_dir

    root = Path(model_dir) if model_dir is not None else default_model_dir()
    try:
        return {**json.loads((root / "model.json").read_text()), "_dir": str(root)}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{root}: no readable model.json ({exc})") from None


def _classical_proba(model_dir: Path, items: list[Item], classes: list[str], *, progress: bool) -> np.ndarray:
    from ..features import extract_many
    from ..models.classical import load_classical

    pipeline, meta = load_classical(model_dir)
    X = extract_many(items, set=meta["features"]["set"], progress=progress)
    proba = pipeline.predict_proba(X)
    order = [str(c) for c in pipeline.classes_]
    return proba[:, [order.index(c) for c in classes]]


def _neural_proba(model_dir: Path | None, items: list[Item], classes: list[str], *, progress: bool) -> tuple[np.ndarray, int]:
    from .._progress import progress as bar
    from ..inference import NO_SPEECH, Predictor

    predictor = Predictor.load(model_dir)
    rows, fallbacks = [], 0
    for it in bar(items, total=len(items), desc="predict", enabled=None if progress else False):
        pred = predictor.predict(it.path, restrict_to=classes)
        if pred.label == NO_SPEECH:  # too little speech for the VAD: score the whole clip instead
            pred = predictor.predict(it.path, restrict_to=classes, vad=False)
            fallbacks += 1
        rows.append([pred.probabilities.get(c, 0.0) for c in classes])
    return np.asarray(rows, dtype=float), fallbacks


def score_model(items: Sequence[Item], *, model_dir: str | os.PathLike | None = None, progress: bool = True,
                log: Callable[[str], None] | None = None) -> tuple[dict, list[dict]]:
    """Predict ``items`` with a model directory (None: the shipped model) and score the predictions.

    Returns
    -------
    result : dict
        The metrics of :func:`emovox.evaluation.metrics.classification_metrics` under ``"pooled"``,
        in the shape of a one-fold protocol result (``summary``, ``folds``, ...), plus ``model``.
    rows : list of dict
        One prediction row per item.
    """
    log = log or (lambda _m: None)
    meta = _model_meta(Path(model_dir) if model_dir is not None else None)
    model_labels = [str(x) for x in meta.get("labels", [])]
    if not model_labels:
        raise ModelError(f"{meta['_dir']}: model.json lists no labels")
    view = view_for_labels(model_labels, meta.get("view"))
    kept, dropped = map_to_model(items, view, model_labels)
    if dropped:
        log(f"{dropped} item(s) have labels the model cannot predict (view {view.name}); left out")
    if not kept:
        raise DataError(f"no test item has a label the model knows ({', '.join(model_labels)})")
    classes = [c for c in model_labels if c in {it.label for it in kept}]
    if len(classes) < len(model_labels):
        log(f"test set has {len(classes)} of the model's {len(model_labels)} classes: predictions restricted to "
            f"{', '.join(classes)}")
    t0 = time.perf_counter()
    fallbacks = 0
    if meta.get("kind") == "classical":
        proba = _classical_proba(Path(meta["_dir"]), kept, classes, progress=progress)
    else:
        proba, fallbacks = _neural_proba(Path(model_dir) if model_dir is not None else None, kept, classes,
                                         progress=progress)
    seconds = time.perf_counter() - t0
    total = proba.sum(axis=1, keepdims=True)
    proba = np.divide(proba, total, out=np.full_like(proba, 1 / len(classes)), where=total > 0)
    y_pred = [classes[k] for k in proba.argmax(axis=1)]
    y_true = [it.label for it in kept]
    metrics = classification_metrics(y_true, y_pred, labels=classes, proba=proba,
                                     speakers=[it.speaker for it in kept], genders=[it.gender for it in kept])
    fold = {"name": "test", "labels": classes, "n_train": 0, "n_val": 0, "n_test": len(kept), "train_seconds": 0.0,
            "infer_ms_per_clip": round(1000 * seconds / len(kept), 3), "search": {}, "metrics": metrics}
    result = {"recipe": str(meta.get("name", Path(meta["_dir"]).name)), "protocol": "evaluate",
              "protocol_number": "–", "title": "evaluation of a saved model", "view": view.name,
              "speaker_independent": True, "quick": False, "seed": 0, "started": "",
              "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "summary": summarize_folds([metrics]),
              "model_bytes": None, "train_seconds": 0.0, "infer_ms_per_clip": fold["infer_ms_per_clip"],
              "feature_ms_per_clip": 0.0, "folds": [fold], "pooled": metrics,
              "model": {"dir": meta["_dir"], "kind": meta.get("kind", "neural"), "labels": model_labels},
              "dropped": dropped, "no_speech_fallbacks": fallbacks}
    rows = [{"fold": "test", "path": it.path, "corpus": it.corpus, "speaker": it.speaker, "gender": it.gender or "",
             "true": it.label, "pred": p, "confidence": round(float(proba[r].max()), 4),
             **{f"p_{c}": round(float(proba[r, k]), 4) for k, c in enumerate(classes)}}
            for r, (it, p) in enumerate(zip(kept, y_pred, strict=True))]
    return result, rows
