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

__all__ = ["fit_head", "fit_heads", "export_model_dir", "HEAD_KEYS"]

#: Arrays of ``head.npz``: for head H in (global, speaker): H_mean, H_scale (the scaler), H_coef
#: ``[n_classes, d]`` and H_intercept ``[n_classes]``.
HEAD_KEYS = tuple(f"{h}_{k}" for h in ("global", "speaker") for k in ("mean", "scale", "coef", "intercept"))


def fit_head(X: np.ndarray, y: Sequence[str], labels: Sequence[str], *, C: float, seed: int = 0) -> dict[str, np.ndarray]:
    """A standard scaler and a multinomial logistic regression on ``X``, as plain arrays.

    Returns ``{"mean", "scale", "coef" [n_classes, d], "intercept" [n_classes]}`` with the classes in
    the order of ``labels`` (every label must occur in ``y``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    missing = sorted(set(labels) - set(y))
    if missing:
        raise ModelError(f"fit_head: no training clip of {missing}")
    X = np.asarray(X, dtype=np.float64)
    scaler = StandardScaler().fit(X)
    clf = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(scaler.transform(X), list(y))
    order = [list(clf.classes_).index(lab) for lab in labels]
    return {"mean": scaler.mean_.astype(np.float32), "scale": scaler.scale_.astype(np.float32),
            "coef": clf.coef_[order].astype(np.float32), "intercept": clf.intercept_[order].astype(np.float32)}


def fit_heads(X: np.ndarray, y: Sequence[str], speakers: Sequence[str], labels: Sequence[str], *,
              C_global: float, C_speaker: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Both heads (``head.npz``'s arrays, :data:`HEAD_KEYS`) from raw embeddings ``X`` of labelled clips.

    The speaker head learns each training speaker's clips relative to that speaker's neutral clips.
    """
    from ..features.normalise import neutral_means_by_group

    heads = {f"global_{k}": v for k, v in fit_head(X, y, labels, C=C_global, seed=seed).items()}
    Z = neutral_means_by_group(X, speakers, y)
    heads |= {f"speaker_{k}": v for k, v in fit_head(Z, y, labels, C=C_speaker, seed=seed).items()}
    return heads


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
    from ..features.whisper.weights import (
        ENCODERS,
        WHISPER_LICENCE,
        encoder_dims,
        load_encoder_weights,
    )

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
    dims = encoder_dims(load_encoder_weights(encoder))
    tmp = out / "head.tmp.npz"
    np.savez(tmp, **{k: np.asarray(heads[k], np.float32) for k in HEAD_KEYS})  # type: ignore[arg-type]
    os.replace(tmp, out / "head.npz")
    files = ["model.onnx", "head.npz"]
    src = ENCODERS[encoder]
    width = dims.n_state
    # stem (2 convolutions + position table) and n_blocks blocks of 12 d^2 + 13 d weights each
    encoder_parameters = (dims.n_mels * width * 3 + width) + (width * width * 3 + width) + dims.n_ctx * width + \
        n_blocks * (12 * width * width + 13 * width)
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
        "pretrained": {"model": f"OpenAI Whisper {encoder}: {src.description}", "licence": WHISPER_LICENCE,
                       "wheels": [{"name": d, "version": v, "file": f, "sha256": h} for d, v, f, h in src.parts]},
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
