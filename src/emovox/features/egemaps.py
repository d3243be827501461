"""eGeMAPSv02 functionals (88 values per utterance) through audEERING's opensmile.

opensmile is imported lazily (it is in the ``train`` extra); a missing install raises
:class:`~emovox.errors.MissingDependencyError` naming ``pip install 'emovox[train]'``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._lazy import require

__all__ = ["egemaps", "egemaps_names", "N_EGEMAPS"]

N_EGEMAPS = 88


@lru_cache(maxsize=1)
def _smile():
    opensmile = require("opensmile", extra="train")
    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def egemaps_names() -> list[str]:
    """The 88 eGeMAPSv02 functional names, in opensmile's order."""
    return list(_smile().feature_names)


def egemaps(y: np.ndarray, *, sr: int = 16000) -> np.ndarray:
    """eGeMAPSv02 functionals of one utterance.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float32 mono
    sr : int

    Returns
    -------
    np.ndarray [shape=(88,)], float64

    Examples
    --------
    >>> egemaps(np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)).shape  # doctest: +SKIP
    (88,)
    """
    out = _smile().process_signal(np.asarray(y, dtype=np.float32), sr)
    return out.to_numpy(dtype=np.float64).reshape(-1)
