"""A frozen Whisper encoder as an embedding, and linear emotion heads over it (kind ``whisper_embed``).

::

    log-mel [b, 80, f] -> conv stem -> blocks 1..k (Whisper, frozen) -> mean, std over time
      -> embedding [b, 2 * width]                                   (model.onnx, ONNX Runtime)
    embedding -> (minus the speaker's neutral reference) -> scaler -> logistic regression -> logits  (head.npz)

Two heads share the embedding:

* ``speaker``: trained on each training speaker's embeddings minus the mean of their neutral clips
  (:func:`emovox.features.normalise.neutral_means_by_group`). A speaker's voice and channel shift every
  embedding the same way; referring to the speaker's neutral voice removes that and keeps the emotion.
  In use the reference is estimated from the speaker's segments weighted by P(neutral)
  (:func:`emovox.features.normalise.neutral_reference`).
* ``global``: trained on the raw embeddings, for a single clip or a speaker without enough
  neutral-sounding speech.

The encoder is the pinned pretrained weights, never trained here: the heads are the only fitted
part, so a model retrains in minutes from cached embeddings (docs/experiments.md measures this
against fine-tuning the upper blocks).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._numeric import sha256_file
from ..errors import ModelError

__all__ = ["export_model_dir", "HEAD_KEYS"]

#: Arrays of ``head.npz``: for head H in (global, speaker): H_mean, H_scale (the scaler), H_coef
#: ``[n_classes, d]`` and H_intercept ``[n_classes]``.
HEAD_KEYS = tuple(f"{h}_{k}" for h in ("global", "speaker") for k in ("mean", "scale", "coef", "intercept"))


def export_model_dir(out: str | os.PathLike, *, encoder: str, n_blocks: int, heads: dict[str, np.ndarray],
                     labels: Sequence[str], name: str, version: str, temperature: dict[str, float],
                     min_weight: float, iterations: int, window_seconds: float, hop_seconds: float,
                     metrics: dict, training: dict) -> Path:
    """Write a ``whisper_embed`` model directory: ``model.onnx`` (int8 encoder), ``head.npz``, ``model.json``.

    ``model.onnx`` is a copy of :func:`emovox.features.whisper.onnx_encoder.encoder_graph` -- the
    graph whose embeddings the heads were fitted on (feature set ``whisper_<encoder>_l<k>_int8``),
    so quantisation is part of what they learnt.
    """
    from ..features.whisper.frontend import WhisperFrontendConfig
    from ..features.whisper.onnx_encoder import CHUNK_SECONDS, MIN_CHUNK_SECONDS, encoder_graph
    from ..features.whisper.weights import encoder_dims, load_encoder_weights, provenance

    missing = [k for k in HEAD_KEYS if k not in heads]
    if missing:
        raise ModelError(f"export_model_dir: heads lack {missing}")
    if window_seconds != CHUNK_SECONDS:
        raise ModelError(f"window_seconds must be the chunk length the heads were fitted on ({CHUNK_SECONDS})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    graph = encoder_graph(encoder, n_blocks)
    shutil.copyfile(graph, out / "model.onnx.tmp")
    os.replace(out / "model.onnx.tmp", out / "model.onnx")
    weights = load_encoder_weights(encoder)
    dims = encoder_dims(weights)
    tmp = out / "head.tmp.npz"
    np.savez(tmp, **{k: np.asarray(heads[k], np.float32) for k in HEAD_KEYS})  # type: ignore[arg-type]
    os.replace(tmp, out / "head.npz")
    files = ["model.onnx", "head.npz"]
    width = dims.n_state
    # the graph holds the stem (convolutions, position table) and the first n_blocks blocks
    kept = [k for k, v in weights.items() if v.size > 1 and not k.startswith("encoder/layer_norm")
            and (not k.startswith("encoder/layer_") or int(k.split("/")[1].split("_")[1]) < n_blocks)]
    encoder_parameters = sum(int(weights[k].size) for k in kept)
    meta = {
        "name": name,
        "version": version,
        "kind": "whisper_embed",
        "labels": list(labels),
        "frontend": WhisperFrontendConfig().to_dict(),
        "windowing": "chunks",
        "window_seconds": window_seconds,
        "hop_seconds": hop_seconds,
        "min_chunk_seconds": MIN_CHUNK_SECONDS,
        "temperature": float(temperature["global"]),
        "normalisation": {
            "kind": "neutral_reference",
            "min_weight": float(min_weight),
            "iterations": int(iterations),
            "reference_labels": ["neutral"],
            "temperature": float(temperature["speaker"]),
            "description": "a speaker (a channel of a call, a diarized speaker, a stream): each segment weighs "
                           "into the speaker's neutral reference by its global-head P(neutral), re-weighed "
                           "`iterations` times by the speaker head; with a total weight >= min_weight each "
                           "embedding minus the reference goes through the speaker head, else the global head",
        },
        "aggregation": "clips longer than window_seconds are cut into equal chunks, each through the frontend "
                       "and the encoder; chunk embeddings averaged, then a head; softmax(logits / temperature)",
        "quantisation": "int8 dynamic (MatMul/Gemm weights), convolutions float; heads float32",
        "sha256": {f: sha256_file(out / f) for f in files},
        "architecture": {"encoder": encoder, "n_blocks": n_blocks, "width": width, "embedding": 2 * width,
                         "pooling": "mean and std over time", "heads": "standard scaler + logistic regression",
                         "parameters": int(encoder_parameters + heads["global_coef"].size + heads["speaker_coef"].size)},
        "pretrained": provenance(encoder),
        "onnx": {"opset": 17, "input": "logmel [batch, 80, frames] (whisper_logmel)",
                 "output": f"embedding [batch, {2 * width}]",
                 "bytes": {f: (out / f).stat().st_size for f in files}},
        "metrics": metrics,
        "training": training,
    }
    tmp_json = out / "model.json.tmp"
    tmp_json.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp_json, out / "model.json")
    return out
