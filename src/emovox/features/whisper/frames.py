"""Cached frame-level hidden states of a frozen Whisper encoder's lower part (training only).

Fine-tuning only the upper blocks of the encoder (:mod:`emovox.models.whisper_ser`) means the
stem and the lower blocks give the same output for a clip every epoch: they are run once per
clip -- and once per augmented copy -- and their states are kept on disk as float16,
``$EMOVOX_CACHE/whisper-frames/<encoder>-l<k>[-aug<seed>]/<sha1 of the clean samples>.npy``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..cache import cache_root, save_array
from .frontend import encoder_input

__all__ = ["frames_cache_dir", "frozen_frames", "sample_digest"]

def frames_cache_dir(encoder: str, layer: int, augment_seed: int | None = None) -> Path:
    """Where the states after ``layer`` blocks of ``encoder`` are cached (one folder per copy)."""
    suffix = "" if augment_seed is None else f"-aug{augment_seed}"
    return cache_root() / "whisper-frames" / f"{encoder}-l{layer}{suffix}"


def sample_digest(y: np.ndarray) -> str:
    """SHA-1 of float32 samples: the cache key of a clip (as decoded, so any container matches)."""
    return hashlib.sha1(np.ascontiguousarray(y, dtype=np.float32).tobytes()).hexdigest()


@lru_cache(maxsize=2)
def _lower_part(encoder: str, layer: int):
    from .encoder import WhisperEncoder

    return WhisperEncoder.pretrained(encoder, layer).eval()


def _encode(y: np.ndarray, encoder: str, layer: int) -> np.ndarray:
    import torch

    with torch.inference_mode():
        h = _lower_part(encoder, layer)(torch.from_numpy(encoder_input(y)[None]))[0]
    return h.numpy().astype(np.float16)


def frozen_frames(paths: Sequence[str], *, encoder: str = "base", layer: int = 2,
                  augment: dict | None = None, seed: int | None = None, progress: bool = False) -> list[np.ndarray]:
    """States ``[frames, width]`` (float16, 50 per second) after ``layer`` blocks, one per file.

    Parameters
    ----------
    paths : list of str
        Audio files (decoded with :func:`emovox.audio.load` at 16 kHz).
    augment, seed : dict and int, optional
        An :class:`emovox.audio.augment.Augmenter` config and the seed of this augmented copy;
        the copy of a clip is drawn once and cached, so every epoch sees the same copy.
    """
    from ...audio import load

    rng = None
    aug = None
    if augment is not None:
        from ...audio.augment import Augmenter

        aug = Augmenter(augment)
    folder = frames_cache_dir(encoder, layer, None if augment is None else int(seed or 0))
    out = []
    iterator: Iterable[str] = paths
    if progress:
        from ..._progress import progress as bar

        iterator = bar(paths, total=len(paths), desc=folder.name)
    for path in iterator:
        y = load(path)
        digest = sample_digest(y)
        file = folder / f"{digest}.npy"
        try:
            out.append(np.load(file, allow_pickle=False))
            continue
        except (OSError, ValueError, EOFError):
            pass
        if aug is not None:
            # one generator per clip, seeded by the copy and the clip: reruns draw the same copy
            rng = np.random.default_rng([int(seed or 0), int(digest[:12], 16)])
            y = aug.apply(y, rng)
        h = _encode(y, encoder, layer)

        save_array(file, h)
        out.append(h)
    return out
