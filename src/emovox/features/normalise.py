"""Speaker normalisation of feature vectors: each speaker's vectors relative to that speaker.

A speaker's voice (and line) shifts every embedding the same way; removing it leaves what varies
within the speaker, which is where emotion lies. Two references:

* :func:`standardise_by_group` -- the mean and scale of *all* of a speaker's clips (labels unused).
  It shines on acted corpora, where every speaker acts every emotion equally often, and fails on a
  real call: a speaker angry throughout is pulled to the middle (docs/experiments.md).
* :func:`neutral_reference` -- the mean of the speaker's *neutral* speech (iterative feature
  normalisation, Busso et al. 2011): in training the neutral clips are known; in use each segment
  weighs in by its probability of being neutral, re-estimated once through the normalised model.
  A speaker with too little neutral-looking speech gets no reference (use a single-clip model).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError

__all__ = ["standardise_by_group", "neutral_means_by_group", "neutral_reference", "NEUTRAL_MIN_WEIGHT",
           "NEUTRAL_ITERATIONS"]

#: :func:`neutral_reference`'s defaults, set a priori (not tuned on any protocol): a reference needs
#: about two neutral-sounding segments, and is re-weighed once through the normalised model.
NEUTRAL_MIN_WEIGHT = 2.0
NEUTRAL_ITERATIONS = 1


def standardise_by_group(X: np.ndarray, groups: Sequence[str], *, weights: np.ndarray | None = None,
                         eps: float = 1e-6) -> np.ndarray:
    """Standardise the rows of each group by that group's (weighted) mean and standard deviation.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Feature vectors.
    groups : sequence of str, length n
        The group of each row (e.g. ``Item.speaker``).
    weights : ndarray, shape (n,), optional
        Non-negative weight of each row in its group's statistics (a zero leaves a row out of them
        but still standardises it); default: all equal.
    eps : float
        Floor of the standard deviation, so a constant feature does not divide by zero.

    Returns
    -------
    ndarray, shape (n, d), float64

    Examples
    --------
    >>> X = np.array([[1.0], [3.0], [10.0], [14.0]])
    >>> standardise_by_group(X, ["a", "a", "b", "b"]).ravel().tolist()
    [-1.0, 1.0, -1.0, 1.0]
    """
    X = np.asarray(X, dtype=np.float64)
    keys = np.asarray(groups)
    if X.ndim != 2 or len(keys) != len(X):
        raise ParameterError(f"standardise_by_group: X must be (n, d) with one group per row, got {X.shape} "
                             f"and {len(keys)} groups")
    w_all = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w_all.shape != (len(X),) or np.any(w_all < 0):
        raise ParameterError("standardise_by_group: weights must be one non-negative number per row")
    out = np.empty_like(X)
    for g in np.unique(keys):
        rows = np.flatnonzero(keys == g)
        w = w_all[rows]
        if w.sum() <= 0:
            raise ParameterError(f"standardise_by_group: group {g!r} has no weight")
        w = w / w.sum()
        mu = w @ X[rows]
        sd = np.sqrt(w @ (X[rows] - mu) ** 2)
        out[rows] = (X[rows] - mu) / np.maximum(sd, eps)
    return out


def neutral_means_by_group(X: np.ndarray, groups: Sequence[str], labels: Sequence[str], *,
                           neutral: Sequence[str] = ("neutral", "calm")) -> np.ndarray:
    """Each row minus the mean of its group's ``neutral`` rows (the training side of :func:`neutral_reference`).

    A group without a neutral row is centred on all of its rows.

    Examples
    --------
    >>> X = np.array([[1.0], [5.0], [10.0], [12.0]])
    >>> neutral_means_by_group(X, ["a", "a", "b", "b"], ["neutral", "angry", "neutral", "sad"]).ravel().tolist()
    [0.0, 4.0, 0.0, 2.0]
    """
    X = np.asarray(X, dtype=np.float64)
    keys, labs = np.asarray(groups), np.asarray(labels)
    if X.ndim != 2 or len(keys) != len(X) or len(labs) != len(X):
        raise ParameterError("neutral_means_by_group: X must be (n, d) with one group and one label per row")
    is_neutral = np.isin(labs, list(neutral))
    out = np.empty_like(X)
    for g in np.unique(keys):
        rows = keys == g
        ref = rows & is_neutral
        out[rows] = X[rows] - X[ref if ref.any() else rows].mean(axis=0)
    return out


def neutral_reference(X: np.ndarray, first_weights: np.ndarray, neutral_probability, *,
                      iterations: int = NEUTRAL_ITERATIONS, min_weight: float = NEUTRAL_MIN_WEIGHT) -> np.ndarray | None:
    """A speaker's neutral reference: the mean of their rows weighted by how neutral each one sounds.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        One speaker's vectors.
    first_weights : ndarray, shape (n,)
        Each row's first probability of being neutral (from a model of single clips).
    neutral_probability : callable
        ``f(X - reference) -> (n,)`` probabilities of neutral from the normalised model; re-weighs
        the rows ``iterations`` times.
    min_weight : float
        Below this total weight (about that many neutral-sounding rows) there is no reference: None.

    Returns
    -------
    ndarray, shape (d,), or None
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(first_weights, dtype=np.float64)
    if X.ndim != 2 or w.shape != (len(X),):
        raise ParameterError("neutral_reference: X must be (n, d) with one weight per row")
    if w.sum() < min_weight:
        return None
    reference = w @ X / w.sum()
    for _ in range(int(iterations)):
        w = np.asarray(neutral_probability(X - reference), dtype=np.float64)
        if w.sum() < min_weight:
            break
        reference = w @ X / w.sum()
    return reference
