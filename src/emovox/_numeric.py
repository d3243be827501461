"""Small numeric helpers shared by every layer (numpy only): the one softmax, the one row
normalisation and the one file hash."""

from __future__ import annotations

import hashlib
import os

import numpy as np

__all__ = ["softmax", "unit_rows", "sha256_file"]


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so large logits do not overflow.

    Examples
    --------
    >>> softmax(np.array([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x`` with each row (last axis) scaled to unit L2 length; an all-zero row stays zero.

    Examples
    --------
    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
