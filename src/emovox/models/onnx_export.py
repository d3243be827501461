"""Export a fitted NeuralClassifier to a model directory: model.onnx, model.int8.onnx, model.json.

The ONNX graph takes ``logmel`` float32 ``[batch, n_mels, frames]`` (dynamic batch and frames)
and returns ``logits`` float32 ``[batch, n_classes]``; it is checked against the torch model
with onnxruntime before anything is written under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._lazy import require
from ..errors import ModelError

__all__ = ["export_onnx", "quantize_int8", "export_model_dir", "sha256", "onnx_logits"]

OPSET = 17
#: Largest |onnxruntime - torch| logit difference accepted on export.
MAX_ABS_DIFF = 1e-3


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def onnx_logits(path: str | os.PathLike, x: np.ndarray, *, threads: int = 2) -> np.ndarray:
    """Run an exported model on ``x`` ``[batch, n_mels, frames]`` with onnxruntime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"logmel": x.astype(np.float32)})[0]


def export_onnx(model: Any, path: str | os.PathLike, *, n_mels: int = 64, frames: int = 301) -> float:
    """Export ``model`` to ``path`` (opset 17) and return the max |onnx - torch| logit difference.

    Raises
    ------
    ModelError
        When onnxruntime's logits differ from torch's by more than ``MAX_ABS_DIFF``.
    """
    torch = require("torch", extra="train")
    model.eval()
    path = Path(path)
    x = torch.randn(2, n_mels, frames)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about GRU batch sizes and shape checks; the probes below verify them.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp), input_names=["logmel"], output_names=["logits"],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={"logmel": {0: "batch", 2: "frames"}, "logits": {0: "batch"}})
    # Check on other batch sizes and lengths than the trace, including a short window.
    diff = 0.0
    for b, t in ((1, frames), (3, frames), (2, 151)):
        probe = torch.randn(b, n_mels, t) * 3 - 8
        with torch.no_grad():
            ref = model(probe).numpy()
        diff = max(diff, float(np.abs(onnx_logits(tmp, probe.numpy()) - ref).max()))
    if diff > MAX_ABS_DIFF:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"ONNX export differs from torch by {diff:.2e} (> {MAX_ABS_DIFF}); not written")
    os.replace(tmp, path)
    return diff


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, *,
                  op_types: tuple[str, ...] = ("MatMul", "Gemm", "GRU", "LSTM")) -> None:
    """Dynamic int8 quantisation of the weights of ``op_types`` (convolutions stay float by default).

    Dynamic quantisation of convolutions (ConvInteger) is both slower and less accurate in
    onnxruntime on CPU, so only dense (and, where onnxruntime supports it, recurrent) layers are
    quantised; for the exported crnn that means its MatMul/Gemm layers, the GRU stays float.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmpdir:
        pre = Path(tmpdir) / "pre.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception:  # pre-processing is an optimisation; quantise the raw graph without it
            pre = Path(src)
        out = Path(tmpdir) / "int8.onnx"
        quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8,
                         op_types_to_quantize=list(op_types))
        os.replace(out, dst)


def export_model_dir(est: Any, out: Path, *, name: str, int8: bool = True, extra: dict) -> Path:
    """Write model.onnx (+ model.int8.onnx) and model.json for the fitted ``est`` into ``out``."""
    from .architectures import count_flops

    dims = est.dims_
    window = est._frames(est.window_seconds)
    diff = export_onnx(est.model_, out / "model.onnx", n_mels=dims.n_mels, frames=window)
    files = ["model.onnx"]
    if int8:
        quantize_int8(out / "model.onnx", out / "model.int8.onnx")
        files.append("model.int8.onnx")
    meta = {
        "name": name,
        "version": extra.pop("version", time.strftime("%Y.%m.%d")),
        "kind": "logmel_cnn",
        "labels": [str(c) for c in est.classes_],
        "frontend": est.frontend.to_dict(),
        "windowing": "sliding",
        "window_seconds": est.window_seconds,
        "hop_seconds": est.hop_seconds,
        "window_frames": window,
        "hop_frames": est._frames(est.hop_seconds) - 1,
        "padding": "wrap",
        "trim": "clips are trimmed of leading/trailing audio 40 dB below their loudest 25 ms frame "
                "(emovox.features.windows.trim_silence); the inference pipeline uses VAD segments instead",
        "temperature": float(est.temperature_),
        "normalisation": "per-utterance mean/variance over time per mel band, inside the graph",
        "aggregation": "mean of window logits, then softmax(logits / temperature)",
        # weights.pt too: export re-creates model.onnx from it only when its hash still matches
        "sha256": {f: sha256(out / f) for f in [*files, "weights.pt"] if (out / f).is_file()},
        "architecture": {**dims.to_dict(), "parameters": int(sum(p.numel() for p in est.model_.parameters())),
                         "mflops_per_window": round(count_flops(est.model_, n_mels=dims.n_mels, frames=window) / 1e6, 1)},
        "onnx": {"opset": OPSET, "input": "logmel [batch, n_mels, frames]", "output": "logits [batch, n_classes]",
                 "max_abs_diff_vs_torch": diff,
                 "bytes": {f: (out / f).stat().st_size for f in files}},
        "metrics": {**getattr(est, "metrics_", {}), **extra.pop("metrics", {})},
        "training": {"params": est._saved_params(), "history": getattr(est, "history_", []),
                     **extra.pop("training", {})},
        **extra,
    }
    tmp = out / "model.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, out / "model.json")
    return out


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
