"""Per-group standardisation of feature vectors: each speaker's vectors by that speaker's own statistics.

A speaker's voice shifts every embedding the same way; removing each speaker's mean and scale
(over that speaker's clips, labels never used) leaves what varies within the speaker, which is
where emotion lies. It needs several clips per speaker (a call, a meeting, a corpus speaker), so it
applies to collections, not to one clip. docs/experiments.md measures it on protocols 1-3.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError

__all__ = ["standardise_by_group"]


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
