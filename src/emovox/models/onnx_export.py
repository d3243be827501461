"""Export models: a fitted NeuralClassifier to a model directory, and a model directory onward.

* :func:`export_model_dir`: model.onnx (+ model.int8.onnx) and model.json of a fitted
  NeuralClassifier. The ONNX graph takes ``logmel`` float32 ``[batch, n_mels, frames]`` (dynamic
  batch and frames) and returns ``logits`` float32 ``[batch, n_classes]``; it is checked
  against the torch model with onnxruntime before anything is written under its final name.
* :func:`export_model` (``emovox export``): an existing model directory re-exported to ONNX
  from its weights.pt (only when weights.pt still has the SHA-256 model.json recorded), int8
  (ONNX Runtime dynamic quantisation) and TFLite (:mod:`emovox.models.tflite_export`: the
  directory's own hash-checked model.tflite / model.int8.tflite copied, else both converted from
  the torch model with ``litert_torch``, the package behind ``ai-edge-torch``). Every artefact is
  verified against ONNX Runtime on the same inputs (max |logit difference| and argmax
  agreement; TFLite in LiteRT's interpreter), and ``model.json`` records the new files' SHA-256.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._lazy import require
from .._numeric import sha256_file
from .._onnx import onnx_session, quantize_int8
from ..errors import ModelError
from .directory import is_shipped, load_card

__all__ = ["export_onnx", "quantize_int8", "export_model_dir", "export_model", "sha256", "onnx_session",
           "onnx_logits", "onnx_clip_logits", "compare", "probe_inputs", "jsonable", "check_weights",
           "load_torch_model"]

OPSET = 17
#: Largest |onnxruntime - torch| logit difference accepted on export.
MAX_ABS_DIFF = 1e-3


#: The one file hash (:func:`emovox._numeric.sha256_file`), under the name this module exported.
sha256 = sha256_file


def onnx_logits(model: str | os.PathLike | Any, x: np.ndarray, *, threads: int = 2, batch: int = 64) -> np.ndarray:
    """Logits ``[n, n_classes]`` of windows ``x`` ``[n, n_mels, frames]`` with onnxruntime.

    ``model`` is an open session (see :func:`onnx_session`; reuse one for many calls) or a path,
    for which a session is opened for this call only.
    """
    sess: Any = model if hasattr(model, "run") else onnx_session(model, threads=threads)
    name = sess.get_inputs()[0].name
    x = np.asarray(x, dtype=np.float32)
    return np.concatenate([sess.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def onnx_clip_logits(path: str | os.PathLike, clip_windows: list[np.ndarray], *, threads: int = 2) -> np.ndarray:
    """Clip logits ``[n_clips, n_classes]``: the mean of each clip's window logits, one session for all."""
    sess = onnx_session(path, threads=threads)
    return np.stack([onnx_logits(sess, w).mean(0) for w in clip_windows])


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
    tmp.write_text(json.dumps(meta, indent=2, default=jsonable) + "\n")
    os.replace(tmp, out / "model.json")
    return out


def jsonable(o: Any) -> Any:
    """``json.dumps`` ``default=``: numpy scalars and arrays, paths and the like as plain JSON values."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# -- export of a model directory (emovox export) ----------------------------------------------
def probe_inputs(n_mels: int, frames: int, *, n: int = 48, seed: int = 0) -> np.ndarray:
    """Log-mel-like test windows ``[n, n_mels, frames]``: smoothed random spectra around -8."""
    rng = np.random.default_rng(seed)
    base = rng.normal(-8.0, 2.5, size=(n, n_mels, 1))
    motion = np.cumsum(rng.normal(0, 0.4, size=(n, n_mels, frames)), axis=2)
    return (base + motion).astype(np.float32)


def compare(reference: np.ndarray, other: np.ndarray) -> dict:
    """``max_abs_diff`` of logits and ``argmax_agreement`` of two ``[n, n_classes]`` arrays."""
    return {"max_abs_diff": float(np.abs(reference - other).max()),
            "argmax_agreement": float((reference.argmax(1) == other.argmax(1)).mean()),
            "n": int(len(reference))}


def check_weights(weights: Path, expected: str | None) -> None:
    """ModelError unless ``weights.pt`` has the SHA-256 that model.json recorded when it was saved.

    Export re-creates model.onnx from it and records the new file's hash as trusted, so an
    unrecorded or changed weights.pt must not get that far.
    """
    if expected is None:
        raise ModelError(f"{weights}: model.json records no sha256 for it, so it cannot be trusted to re-export "
                         "model.onnx; re-save the model (NeuralClassifier.save / emovox train), or delete "
                         "weights.pt to export model.onnx as it is")
    actual = sha256(weights)
    if actual.lower() != str(expected).lower():
        raise ModelError(f"{weights}: SHA-256 mismatch (model.json: {str(expected)[:12]}…, file: {actual[:12]}…); "
                         "it changed after the model was saved: restore it or re-save the model")


def load_torch_model(src: Path):
    """The torch module of a neural model directory (``weights.pt``)."""
    require("torch", extra="train")
    from .neural import NeuralClassifier

    est = NeuralClassifier.load(src)
    return est.model_.eval()


def export_model(model_dir: str | os.PathLike, out: str | os.PathLike | None = None, *,
                 onnx: bool = True, int8: bool = False, tflite: bool = False) -> dict:
    """Export ``model_dir`` into ``out`` (default: in place) and verify every artefact.

    Returns
    -------
    dict
        ``{"out": dir, "files": {name: bytes}, "checks": {name: {max_abs_diff,
        argmax_agreement, n}}, "notes": [...]}``; the same report is stored in
        ``model.json["export"]``.

    Raises
    ------
    ModelError, MissingDependencyError
    """
    from ..features.windows import seconds_to_frames
    from .tflite_export import (
        TFLITE_FILES,
        check_kind,
        has_tflite,
        no_tflite_source,
        require_converter,
        tflite_into,
    )

    card = load_card(model_dir)
    src = card.directory
    if out is None and is_shipped(src):
        raise ModelError(f"{src}: a shipped model is not rewritten in place; give an output directory (--out DIR)")
    if tflite:
        check_kind(card)
        if not has_tflite(card) and not (src / "weights.pt").is_file():
            raise no_tflite_source(card)  # before anything is written
    dst = Path(out) if out is not None else src
    dst.mkdir(parents=True, exist_ok=True)
    meta = dict(card.raw)
    sha = dict(meta.get("sha256") or {})
    notes: list[str] = []
    checks: dict[str, dict] = {}
    frames = int(meta.get("window_frames") or seconds_to_frames(card.window_seconds, sr=card.frontend.sr,
                                                                 hop_length=card.frontend.hop_length))
    x = probe_inputs(card.frontend.n_mels, frames)
    weights = src / "weights.pt"
    torch_model = None
    # TFLite files the directory ships (hash-checked) are copied, so only ONNX needs torch then
    tflite_shipped = tflite and has_tflite(card)
    if weights.is_file() and (onnx or (tflite and not tflite_shipped)):
        check_weights(weights, sha.get("weights.pt"))
        if tflite and not tflite_shipped:
            require_converter()  # say which extra before loading torch
        torch_model = load_torch_model(src)
    if onnx:
        if torch_model is not None:
            diff = export_onnx(torch_model, dst / "model.onnx", n_mels=card.frontend.n_mels, frames=frames)
            notes.append(f"model.onnx re-exported from weights.pt (|onnx - torch| <= {diff:.2e})")
        elif dst != src:
            card.verify(card.onnx_path())
            shutil.copy2(card.onnx_path(), dst / "model.onnx")
            notes.append("model.onnx copied (no weights.pt to re-export from)")
        sha["model.onnx"] = sha256(dst / "model.onnx")
    onnx_path = dst / "model.onnx" if (dst / "model.onnx").is_file() else card.onnx_path()
    reference = onnx_logits(onnx_path, x)
    if int8 and str(meta.get("quantisation", "")).startswith("int8"):
        notes.append("model.onnx is already int8 (model.json 'quantisation'); no model.int8.onnx written")
        int8 = False
    if int8:
        quantize_int8(onnx_path, dst / "model.int8.onnx")
        sha["model.int8.onnx"] = sha256(dst / "model.int8.onnx")
        checks["model.int8.onnx"] = compare(reference, onnx_logits(dst / "model.int8.onnx", x))
    if tflite:
        tflite_checks, tflite_notes = tflite_into(card, dst, torch_model=torch_model, x=x[:16], onnx_path=onnx_path)
        sha.update({name: sha256(dst / name) for name in TFLITE_FILES})
        checks.update(tflite_checks)
        notes.extend(tflite_notes)
    files = {f: (dst / f).stat().st_size for f in sha if (dst / f).is_file()}
    report = {"out": str(dst), "files": files, "checks": checks, "notes": notes}
    meta["sha256"] = {f: h for f, h in sha.items() if (dst / f).is_file()}
    meta["export"] = {"checks": checks, "notes": notes, "probe": "48 synthetic log-mel windows, seed 0"}
    tmp = dst / "model.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, dst / "model.json")
    if dst != src and (src / "card.md").is_file():
        shutil.copy2(src / "card.md", dst / "card.md")
    return report
