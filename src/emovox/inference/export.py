"""Export a model directory: ONNX (re-exported from weights.pt, or copied), int8, TFLite.

* ONNX: a neural model directory with ``weights.pt`` is re-exported with
  :func:`emovox.models.onnx_export.export_onnx` (torch needed); otherwise ``model.onnx`` is
  taken as it is.
* int8: ONNX Runtime dynamic quantisation (:func:`emovox.models.onnx_export.quantize_int8`).
* TFLite: float32 and dynamic-range int8 from the torch model with ``litert_torch`` (the
  package behind ``ai-edge-torch``), checked in LiteRT's interpreter (``ai-edge-litert``).

Every artefact is verified against ONNX Runtime on the same inputs (max |logit difference| and
argmax agreement), and ``model.json`` records the new files' SHA-256.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from .._lazy import require
from ..errors import MissingDependencyError, ModelError
from .model import load_card, sha256_file

__all__ = ["quantize_int8", "export_model", "compare", "probe_inputs"]


def _ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[i : i + 16]})[0]
                           for i in range(0, len(x), 16)])


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


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Dynamic int8 quantisation (ONNX Runtime) of ``src`` into ``dst``, checked to load.

    Uses :func:`emovox.models.onnx_export.quantize_int8` (dense and recurrent layers only);
    written to a temporary name and renamed.
    """
    from ..models.onnx_export import quantize_int8 as _quantize

    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs advice through the root logger
    try:
        _quantize(src, tmp)
        import onnxruntime as ort

        ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{src}: int8 quantisation failed ({str(exc).splitlines()[0][:200]})") from None
    finally:
        root.setLevel(level)
    os.replace(tmp, dst)
    return dst


def _check_weights(weights: Path, expected: str | None) -> None:
    """ModelError unless ``weights.pt`` has the SHA-256 that model.json recorded when it was saved.

    Export re-creates model.onnx from it and records the new file's hash as trusted, so an
    unrecorded or changed weights.pt must not get that far.
    """
    if expected is None:
        raise ModelError(f"{weights}: model.json records no sha256 for it, so it cannot be trusted to re-export "
                         "model.onnx; re-save the model (NeuralClassifier.save / emovox train), or delete "
                         "weights.pt to export model.onnx as it is")
    actual = sha256_file(weights)
    if actual.lower() != str(expected).lower():
        raise ModelError(f"{weights}: SHA-256 mismatch (model.json: {str(expected)[:12]}…, file: {actual[:12]}…); "
                         "it changed after the model was saved: restore it or re-save the model")


def _torch_model(src: Path):
    """The torch module of a neural model directory (``weights.pt``)."""
    require("torch", extra="train")
    from ..models.neural import NeuralClassifier

    est = NeuralClassifier.load(src)
    return est.model_.eval()


def _tflite(model, sample: np.ndarray, out: Path, *, int8: bool) -> Path:
    """Convert a torch module to TFLite with litert_torch (float or dynamic-range int8)."""
    try:
        import litert_torch
    except ImportError as exc:
        raise MissingDependencyError(
            "TFLite export needs litert-torch (ai-edge-torch==0.7.2) and ai-edge-litert: "
            "pip install 'emovox[export]' (keep torch==2.13.0)") from exc
    import torch

    args = (torch.from_numpy(sample),)
    kwargs = {}
    if int8:
        from litert_torch.generative.quantize import quant_recipes

        kwargs["quant_config"] = quant_recipes.full_dynamic_recipe()
    edge = litert_torch.convert(model, args, **kwargs)
    tmp = out.with_name(out.name + ".tmp")
    edge.export(str(tmp))
    os.replace(tmp, out)
    return out


def _tflite_logits(path: Path, x: np.ndarray) -> np.ndarray:
    interp_mod = require("ai_edge_litert.interpreter", extra="export")
    interp = interp_mod.Interpreter(model_path=str(path))
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    batch = int(inp["shape"][0])
    rows = []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], chunk.astype(np.float32))
        interp.invoke()
        rows.append(interp.get_tensor(outp["index"])[: batch - pad])
    return np.concatenate(rows)


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
    card = load_card(model_dir)
    src = card.directory
    dst = Path(out) if out is not None else src
    dst.mkdir(parents=True, exist_ok=True)
    meta = dict(card.raw)
    sha = dict(meta.get("sha256") or {})
    notes: list[str] = []
    checks: dict[str, dict] = {}
    frames = int(meta.get("window_frames") or card.window_seconds * card.frontend.sr // card.frontend.hop_length + 1)
    x = probe_inputs(card.frontend.n_mels, frames)
    weights = src / "weights.pt"
    torch_model = None
    if weights.is_file() and (onnx or tflite):
        _check_weights(weights, sha.get("weights.pt"))
        torch_model = _torch_model(src)
    if onnx:
        if torch_model is not None:
            from ..models.onnx_export import export_onnx

            diff = export_onnx(torch_model, dst / "model.onnx", n_mels=card.frontend.n_mels, frames=frames)
            notes.append(f"model.onnx re-exported from weights.pt (|onnx - torch| <= {diff:.2e})")
        elif dst != src:
            card.verify(card.onnx_path())
            shutil.copy2(card.onnx_path(), dst / "model.onnx")
            notes.append("model.onnx copied (no weights.pt to re-export from)")
        sha["model.onnx"] = sha256_file(dst / "model.onnx")
    onnx_path = dst / "model.onnx" if (dst / "model.onnx").is_file() else card.onnx_path()
    reference = _ort_logits(onnx_path, x)
    if int8:
        quantize_int8(onnx_path, dst / "model.int8.onnx")
        sha["model.int8.onnx"] = sha256_file(dst / "model.int8.onnx")
        checks["model.int8.onnx"] = compare(reference, _ort_logits(dst / "model.int8.onnx", x))
    if tflite:
        if torch_model is None:
            raise ModelError(f"{src}: TFLite export needs weights.pt (a neural model); "
                             "ONNX-only and classical models cannot be converted here")
        sample = x[:1]
        for name, q in (("model.tflite", False), ("model.int8.tflite", True)):
            _tflite(torch_model, sample, dst / name, int8=q)
            sha[name] = sha256_file(dst / name)
            checks[name] = compare(reference, _tflite_logits(dst / name, x))
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
