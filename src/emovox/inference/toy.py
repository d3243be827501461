"""A tiny ONNX model directory for tests and examples (not a trained model; never shipped).

Its graph has the contract of a real model (input ``logmel`` [batch, n_mels, frames], output
``logits`` [batch, n_classes]): the mean log-mel over frames times a fixed random matrix.
Other packages' tests can use it to exercise the prediction path without the shipped model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._lazy import require
from ..features.logmel import LogMelConfig
from .model import sha256_file

__all__ = ["make_toy_model"]

TOY_LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def make_toy_model(directory: str | os.PathLike, *, labels: tuple[str, ...] = TOY_LABELS,
                   window_seconds: float = 3.0, hop_seconds: float = 1.5, temperature: float = 1.5,
                   n_mels: int = 64, seed: int = 0, int8: bool = False) -> Path:
    """Write ``model.onnx`` + ``model.json`` (+ ``card.md``) of a toy model into ``directory``.

    Examples
    --------
    >>> from emovox.inference import Predictor
    >>> p = Predictor.load(make_toy_model(tmp / "toy"))  # doctest: +SKIP
    """
    onnx = require("onnx", extra="export")
    from onnx import TensorProto, helper, numpy_helper

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weight = (rng.normal(size=(n_mels, len(labels))) * 0.05).astype(np.float32)
    bias = (rng.normal(size=len(labels)) * 0.1).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["logmel", "axes"], ["pooled"], keepdims=0),
            helper.make_node("Gemm", ["pooled", "W", "B"], ["logits"]),
        ],
        "toy",
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", n_mels, "frames"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)])],
        initializer=[
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axes"),
            numpy_helper.from_array(weight, "W"),
            numpy_helper.from_array(bias, "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, directory / "model.onnx")
    sha = {"model.onnx": sha256_file(directory / "model.onnx")}
    if int8:
        from ..models.onnx_export import quantize_int8

        quantize_int8(directory / "model.onnx", directory / "model.int8.onnx")
        sha["model.int8.onnx"] = sha256_file(directory / "model.int8.onnx")
    meta = {
        "name": "toy", "version": "0", "labels": list(labels),
        "frontend": LogMelConfig(n_mels=n_mels).to_dict(),
        "window_seconds": window_seconds, "hop_seconds": hop_seconds, "temperature": temperature,
        "normalisation": None, "sha256": sha,
        "metrics": {}, "training": {"note": "random weights, for tests only"},
        "calibration": {"ece_before": 0.2, "ece_after": 0.05},
    }
    (directory / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (directory / "card.md").write_text("# Toy model\n\nRandom weights, for tests only.\n", encoding="utf-8")
    return directory
