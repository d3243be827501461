"""The frozen Whisper encoder as an int8 ONNX graph: the embedding the shipped model computes.

::

    log-mel [b, 80, f] -> conv stem -> blocks 1..k (pretrained, frozen) -> mean, std over time
      -> embedding [b, 2 * width]

:func:`encoder_graph` builds the graph once from the pinned weights (torch export, then int8
dynamic quantisation of the dense layers; convolutions stay float) and keeps it in the cache;
:func:`onnx_embedding` runs it on a clip the way :class:`emovox.inference.Predictor` does (equal
chunks of at most 4 s, each through :func:`~.frontend.whisper_logmel` on its own, chunk
embeddings averaged), so heads fitted on these vectors see exactly what prediction computes. The
feature sets ``whisper_<encoder>_l<k>_int8`` read it; building the graph needs torch and the
``whisper`` extra, running it only onnxruntime.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..._numeric import sha256_file
from ..._onnx import onnx_session, quantize_int8
from ...errors import ModelError
from ..cache import cache_root, save_array
from .frontend import chunk_logmels

__all__ = ["CHUNK_SECONDS", "MIN_CHUNK_SECONDS", "encoder_graph", "export_encoder_onnx", "onnx_embedding",
           "clip_inputs"]

#: A clip is cut into equal chunks of at most this length (the shipped model's ``window_seconds``).
CHUNK_SECONDS = 4.0
#: Shorter chunks are padded with silence to this length (``min_chunk_seconds``).
MIN_CHUNK_SECONDS = 0.25
#: Bump when the graph or the chunking changes, so cached embeddings are recomputed.
GRAPH_VERSION = 1


def _pooled_encoder(encoder: str, n_blocks: int) -> Any:
    import torch
    from torch import nn

    from .encoder import WhisperEncoder

    class PooledEncoder(nn.Module):
        """The first ``n_blocks`` blocks, then mean and (population) std over time."""

        def __init__(self, enc: WhisperEncoder):
            super().__init__()
            self.encoder = enc

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            h = self.encoder(mel)
            mean = h.mean(dim=1)
            return torch.cat([mean, torch.sqrt(((h - mean.unsqueeze(1)) ** 2).mean(dim=1))], dim=-1)

    return PooledEncoder(WhisperEncoder.pretrained(encoder, n_blocks)).eval()


def export_encoder_onnx(encoder: str, n_blocks: int, path: str | os.PathLike, *, opset: int = 17) -> float:
    """The pooled encoder as float32 ONNX (input ``logmel``, output ``embedding``); dynamic batch and frames.

    Returns the largest |onnxruntime - torch| difference relative to the embedding's scale over
    probes of several lengths; raises :class:`ModelError` (and writes nothing) above 1e-3.
    """
    import torch

    model = _pooled_encoder(encoder, n_blocks)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.onnx")
    n_mels = model.encoder.dims.n_mels
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on the position-table slice; probed below
        torch.onnx.export(model, (torch.randn(1, n_mels, 300),), str(tmp), input_names=["logmel"],
                          output_names=["embedding"], opset_version=opset, dynamo=False,
                          dynamic_axes={"logmel": {0: "batch", 2: "frames"}, "embedding": {0: "batch"}})
    sess = onnx_session(tmp, threads=1)
    diff = 0.0
    gen = torch.Generator().manual_seed(0)
    for b, t in ((1, 300), (2, 137), (1, 400), (1, 26)):
        probe = torch.rand(b, n_mels, t, generator=gen) * 2 - 1
        with torch.no_grad():
            ref = model(probe).numpy()
        got = sess.run(None, {"logmel": probe.numpy()})[0]
        diff = max(diff, float(np.abs(got - ref).max() / (np.abs(ref).max() + 1e-9)))
    if diff > 1e-3:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"ONNX export differs from torch by {diff:.2e} of the scale (> 1e-3); not written")
    os.replace(tmp, path)
    return diff


def _graph_dir(encoder: str, n_blocks: int) -> Path:
    return cache_root() / "whisper-onnx" / f"{encoder}-l{n_blocks}-int8-v{GRAPH_VERSION}"


def encoder_graph(encoder: str = "base", n_blocks: int = 3) -> Path:
    """The int8 graph of the pooled encoder, built on first use into the cache (``graph.onnx``).

    Its SHA-256 names the embedding cache beside it, so embeddings of another build are never mixed in.
    """
    path = _graph_dir(encoder, n_blocks) / "graph.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        float_path = path.with_name("graph.float.onnx")
        export_encoder_onnx(encoder, n_blocks, float_path)
        quantize_int8(float_path, path, op_types=("MatMul", "Gemm"))
        float_path.unlink()
    return path


@lru_cache(maxsize=4)
def _digest(path: str, mtime_ns: int) -> str:
    return sha256_file(path)


@lru_cache(maxsize=2)
def _session(path: str, digest: str) -> Any:
    return onnx_session(path, threads=1)


def clip_inputs(y: np.ndarray, *, chunk_seconds: float = CHUNK_SECONDS,
                min_chunk_seconds: float = MIN_CHUNK_SECONDS, sr: int = 16000) -> list[np.ndarray]:
    """The encoder inputs of a clip (:func:`~.frontend.chunk_logmels` with the shipped model's chunking)."""
    return chunk_logmels(y, chunk_samples=int(round(chunk_seconds * sr)),
                         min_samples=int(round(min_chunk_seconds * sr)))


def onnx_embedding(y: np.ndarray, *, encoder: str = "base", n_blocks: int = 3, cache: bool = True) -> np.ndarray:
    """The embedding of a 16 kHz clip through the int8 graph, as the predictor computes it; float32 ``[2 * width]``.

    Cached per clip (keyed by the samples' SHA-1) under the graph's own directory.
    """
    graph = encoder_graph(encoder, n_blocks)
    digest = _digest(str(graph), graph.stat().st_mtime_ns)
    y = np.ascontiguousarray(y, dtype=np.float32)
    path = None
    if cache:
        key = hashlib.sha1(y.tobytes()).hexdigest()
        path = graph.parent / f"emb-{digest[:12]}" / key[:2] / f"{key}.npy"
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            pass
    sess = _session(str(graph), digest)
    emb = np.mean([sess.run(None, {"logmel": m[None].astype(np.float32)})[0][0] for m in clip_inputs(y)], axis=0)
    emb = emb.astype(np.float32)
    if path is not None:
        save_array(path, emb)
    return emb
