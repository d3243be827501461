"""Utterance embeddings from a frozen pretrained Whisper encoder, every layer at once, cached.

The statistics (mean and standard deviation over time) of each layer's hidden states are
computed in one pass through the encoder and kept on disk per clip, so the feature sets of
several cut depths (``whisper_base_l1`` .. ``whisper_base_l6``) cost one encoder pass per clip
in all. Training-time only: it needs torch and the ``whisper`` extra.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...errors import ParameterError
from ..cache import cache_root, save_array
from .frontend import encoder_input

__all__ = ["ENCODER_LAYERS", "layer_stats", "layer_states", "pooled_stats", "layer_stat_names", "embedding_cache_dir"]

#: Pretrained encoders and the blocks whose statistics are kept (a set ``whisper_<key>_l<k>``,
#: 0 <= k <= blocks). Base stops after 4 of its 6 blocks: the middle blocks carry the most
#: emotion (block 3 > block 6 in a frozen probe) and blocks 5-6 would cost a third more per clip.
ENCODER_LAYERS = {"base": 4, "tiny.en": 4}
#: Bump when the computation changes, so cached statistics are recomputed.
EMBEDDINGS_VERSION = 1


def embedding_cache_dir(encoder: str) -> Path:
    """``$EMOVOX_CACHE/whisper/<encoder>-v<version>`` (default ``~/.cache/emovox``)."""
    return cache_root() / "whisper" / f"{encoder}-v{EMBEDDINGS_VERSION}"


@lru_cache(maxsize=2)
def _encoder(name: str):
    import torch

    from .encoder import WhisperEncoder

    enc = WhisperEncoder.pretrained(name, ENCODER_LAYERS[name]).eval()
    for p in enc.parameters():
        p.requires_grad_(False)
    torch.set_grad_enabled(False)
    return enc


def layer_states(y: np.ndarray, *, encoder: str = "base") -> np.ndarray:
    """Hidden states of every layer of a frozen Whisper encoder (not cached).

    Returns
    -------
    np.ndarray [shape=(blocks + 1, frames, width)], float32; frames = 50 per second
    """
    import torch

    mel = torch.from_numpy(encoder_input(y)[None])
    with torch.inference_mode():
        states = _encoder(encoder)(mel, all_layers=True)
    return torch.stack(states)[:, 0].numpy()


def pooled_stats(states: np.ndarray) -> np.ndarray:
    """Mean and std over time: ``[layers, frames, d]`` -> ``[layers, 2 * d]`` float32."""
    return np.concatenate([states.mean(axis=1), states.std(axis=1)], axis=1).astype(np.float32)


def _compute(y: np.ndarray, name: str) -> np.ndarray:
    return pooled_stats(layer_states(y, encoder=name))


def layer_stats(y: np.ndarray, *, encoder: str = "base", cache: bool = True,
                states: np.ndarray | None = None) -> np.ndarray:
    """Mean and std over time of every layer of a frozen Whisper encoder.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], mono 16 kHz audio (the first 30 s are used)
    encoder : {"base", "tiny.en"}
    cache : bool
        Keep the result on disk (:func:`embedding_cache_dir`), keyed by the samples' SHA-1.
    states : np.ndarray, optional
        :func:`layer_states` of ``y`` when the caller has them already.

    Returns
    -------
    np.ndarray [shape=(blocks + 1, 2 * width)], float32
        Row 0: after the convolutional stem; row k: after block k.
    """
    if encoder not in ENCODER_LAYERS:
        raise ParameterError(f"unknown Whisper encoder {encoder!r}; choose from {', '.join(ENCODER_LAYERS)}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    path = None
    if cache:
        digest = hashlib.sha1(y.tobytes()).hexdigest()
        path = embedding_cache_dir(encoder) / digest[:2] / f"{digest}.npy"
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            pass
    stats = pooled_stats(states) if states is not None else _compute(y, encoder)
    if path is not None:
        save_array(path, stats)
    return stats


def layer_stat_names(encoder: str, layer: int, width: int) -> list[str]:
    """Value names of one layer's statistics: ``whisper_base_l3_mean_000`` ..."""
    key = encoder.replace(".", "_")
    return [f"whisper_{key}_l{layer}_{s}_{i:03d}" for s in ("mean", "std") for i in range(width)]
