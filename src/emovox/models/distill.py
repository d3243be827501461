"""Knowledge distillation: a classical teacher's probabilities as soft targets for a neural student.

The teacher (a classical recipe, e.g. eGeMAPS + logistic regression) is *cross-fitted* on the
student's training clips: the clips are split into speaker-grouped folds and each fold's soft
targets come from a teacher fitted on the other folds, so the targets carry the teacher's
generalisation error rather than its memorised training labels (Hinton et al. 2015 train the
teacher on the same data; with a tiny classical teacher that would just echo the labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError

__all__ = ["cross_fitted_proba"]


def cross_fitted_proba(teacher: dict, X: np.ndarray, y: Sequence[str], groups: Sequence[str],
                       classes: Sequence[str], *, folds: int = 5) -> np.ndarray:
    """Out-of-fold teacher probabilities ``[n, len(classes)]`` for the clips ``X`` (rows).

    Parameters
    ----------
    teacher : dict
        A parsed classical recipe (``[model]``, ``[search]``).
    X : np.ndarray [shape=(n, d)]
        The teacher's features of the training clips.
    y, groups : sequences of str
        Labels and speakers of the clips; folds never split a speaker.
    classes : sequence of str
        Column order of the result (the student's ``classes_``).
    folds : int
        Speaker-grouped folds (fewer when there are fewer speakers).
    """
    from sklearn.model_selection import GroupKFold

    from .classical import align_proba, fit_classical

    y_arr, g_arr = np.asarray(y), np.asarray(groups)
    n_groups = len(set(g_arr.tolist()))
    if n_groups < 2:
        raise ParameterError("distillation needs at least two speakers to cross-fit the teacher")
    out = np.zeros((len(y_arr), len(classes)))
    for tr, te in GroupKFold(n_splits=min(folds, n_groups)).split(X, y_arr, g_arr):
        model, _ = fit_classical(teacher, X[tr], y_arr[tr], groups=g_arr[tr])
        out[te] = align_proba(model.predict_proba(X[te]), [str(c) for c in model.classes_], classes)
    return out
