"""Classification metrics for emotion recognition, in numpy only (no scikit-learn on this path).

Conventions: every score is a fraction in [0, 1]. UA (unweighted average recall) and macro-F1
average over the classes that occur in ``y_true`` (a class absent from a test set has no recall);
WA is plain accuracy. Fold results are summarised as mean and sample std (ddof=1) over folds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError

__all__ = ["classification_metrics", "confusion_matrix", "roc_curve", "roc_auc", "summarize_folds",
           "group_scores", "SUMMARY_KEYS"]

#: The scalar metrics summarised over folds.
SUMMARY_KEYS = ("ua", "wa", "macro_f1")


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], *, labels: Sequence[str]) -> np.ndarray:
    """Counts ``[n_labels, n_labels]``: row = true label, column = predicted label.

    Examples
    --------
    >>> confusion_matrix(["a", "b", "b"], ["a", "a", "b"], labels=["a", "b"]).tolist()
    [[1, 0], [1, 1]]
    """
    index = {label: k for k, label in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t in index and p in index:
            cm[index[t], index[p]] += 1
    return cm


def _scores_from_confusion(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1).astype(float)
    predicted = cm.sum(axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1, support


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest ROC points ``(fpr, tpr)`` for binary ``y_true`` [n] (bool) and ``score`` [n]."""
    order = np.argsort(-score, kind="mergesort")
    y, s = y_true[order].astype(float), score[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps, fps = np.cumsum(y)[distinct], np.cumsum(1 - y)[distinct]
    p, n = max(tps[-1], 1.0), max(fps[-1], 1.0)
    return np.r_[0.0, fps / n], np.r_[0.0, tps / p]


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN if one class is absent."""
    y = np.asarray(y_true, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _thin(x: np.ndarray, y: np.ndarray, n: int = 101) -> tuple[list[float], list[float]]:
    """At most ``n`` points of a curve, for JSON and plotting."""
    if len(x) > n:
        keep = np.unique(np.r_[np.linspace(0, len(x) - 1, n).astype(int)])
        x, y = x[keep], y[keep]
    return [round(float(v), 4) for v in x], [round(float(v), 4) for v in y]


def group_scores(y_true: Sequence[str], y_pred: Sequence[str], groups: Sequence[str | None]) -> dict[str, dict]:
    """Accuracy and UA per group (speaker, gender): ``{group: {"n", "wa", "ua"}}``."""
    yt, yp = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    g = np.asarray([x if x else "unknown" for x in groups], dtype=object)
    out = {}
    for name in sorted(set(g)):
        m = g == name
        # the group's predicted labels are columns too: a prediction outside its true classes is a miss
        labels = sorted(set(yt[m]) | set(yp[m]))
        _, recall, _, support = _scores_from_confusion(confusion_matrix(yt[m], yp[m], labels=labels))
        out[str(name)] = {"n": int(m.sum()), "wa": float(np.mean(yt[m] == yp[m])),
                          "ua": float(recall[support > 0].mean())}
    return out


def classification_metrics(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    *,
    labels: Sequence[str],
    proba: np.ndarray | None = None,
    speakers: Sequence[str] | None = None,
    genders: Sequence[str | None] | None = None,
) -> dict:
    """All metrics of one test set.

    Parameters
    ----------
    y_true, y_pred : sequence of str [n]
        True and predicted labels.
    labels : sequence of str [k]
        The classes, in the order of ``proba``'s columns and of the confusion matrix.
    proba : np.ndarray [n, k], optional
        Class probabilities, for the one-vs-rest ROC curves and AUCs.
    speakers, genders : sequence of str [n], optional
        For accuracy and UA per speaker and per gender.

    Returns
    -------
    dict
        ``n, labels, wa, ua, macro_f1, per_class {label: {precision, recall, f1, support}},
        confusion [k][k]``, and where given ``roc {label: {auc, fpr, tpr}}, auc_macro,
        per_speaker, per_gender``.

    Examples
    --------
    >>> m = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], labels=["a", "b"])
    >>> round(m["wa"], 2), round(m["ua"], 2)
    (0.75, 0.75)
    """
    labels = list(labels)
    if len(y_true) != len(y_pred):
        raise ParameterError(f"{len(y_true)} true labels but {len(y_pred)} predictions")
    if len(y_true) == 0:
        raise ParameterError("no test items to score")
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = _scores_from_confusion(cm)
    present = support > 0
    out: dict = {
        "n": len(y_true),
        "labels": labels,
        "wa": float(np.mean(np.asarray(y_true, dtype=object) == np.asarray(y_pred, dtype=object))),
        "ua": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "per_class": {label: {"precision": float(precision[k]), "recall": float(recall[k]),
                              "f1": float(f1[k]), "support": int(support[k])}
                      for k, label in enumerate(labels)},
        "confusion": cm.tolist(),
    }
    if proba is not None:
        proba = np.asarray(proba, dtype=float)
        if proba.shape != (len(y_true), len(labels)):
            raise ParameterError(f"proba has shape {proba.shape}, expected ({len(y_true)}, {len(labels)})")
        yt = np.asarray(y_true, dtype=object)
        roc = {}
        for k, label in enumerate(labels):
            positive = yt == label
            auc = roc_auc(positive, proba[:, k])
            if np.isnan(auc):
                continue
            fpr, tpr = _thin(*roc_curve(positive, proba[:, k]))
            roc[label] = {"auc": auc, "fpr": fpr, "tpr": tpr}
        out["roc"] = roc
        out["auc_macro"] = float(np.mean([r["auc"] for r in roc.values()])) if roc else float("nan")
    if speakers is not None:
        out["per_speaker"] = group_scores(y_true, y_pred, speakers)
    if genders is not None:
        out["per_gender"] = group_scores(y_true, y_pred, genders)
    return out


def summarize_folds(folds: Sequence[dict], *, keys: Sequence[str] = SUMMARY_KEYS) -> dict[str, dict]:
    """Mean and sample std (ddof=1; 0 for a single fold) of each scalar metric over folds.

    Examples
    --------
    >>> summarize_folds([{"ua": 0.4, "wa": 0.5, "macro_f1": 0.3}, {"ua": 0.6, "wa": 0.5, "macro_f1": 0.3}])["ua"]
    {'mean': 0.5, 'std': 0.1414, 'n_folds': 2}
    """
    out = {}
    for key in keys:
        values = np.array([f[key] for f in folds if key in f and not np.isnan(f[key])], dtype=float)
        if not len(values):
            continue
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = {"mean": round(float(values.mean()), 4), "std": round(std, 4), "n_folds": len(values)}
    return out
