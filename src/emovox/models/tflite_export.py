"""TFLite files of a log-mel CNN model directory, for edge devices (LiteRT).

A ``logmel_cnn`` model directory may carry, beside ``model.onnx`` and ``model.json``:

* ``weights.pt`` -- the torch weights (tensors + JSON, ``torch.load(weights_only=True)``), its
  SHA-256 in ``model.json["sha256"]``; checked before anything is converted from it;
* ``model.tflite`` (float32) and ``model.int8.tflite`` (dynamic-range int8: int8 weights,
  float activations) -- input ``[1, n_mels, window_frames]`` float32 log-mel (one window; the
  shape is fixed), output ``[1, n_classes]`` logits, as ``model.onnx``; their SHA-256 in
  ``model.json["sha256"]`` and the conversion's checks in ``model.json["tflite"]``.

:func:`export_tflite` writes the two TFLite files from ``weights.pt`` in place. To ship them with a
newly trained tiny model (needs ``pip install "emovox[export]"`` beside torch==2.13.0)::

    python -c "from emovox.models.tflite_export import export_tflite; print(export_tflite('src/emovox/assets/model-tiny'))"

``emovox export --model DIR --tflite`` copies shipped, hash-checked TFLite files (no converter
needed) and converts from ``weights.pt`` only where a directory has none (:func:`tflite_into`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._numeric import sha256_file
from ..errors import MissingDependencyError, ModelError
from .directory import load_card

__all__ = ["TFLITE_FILES", "MAX_FLOAT_DIFF", "export_tflite", "tflite_into", "convert", "tflite_logits",
           "has_tflite", "no_tflite_source", "check_kind", "require_converter"]

#: The TFLite files of a model directory: name -> dynamic-range int8 or not.
TFLITE_FILES = {"model.tflite": False, "model.int8.tflite": True}

#: Largest |TFLite float32 - ONNX Runtime| logit difference accepted (measured: ~1e-7).
MAX_FLOAT_DIFF = 1e-3

#: Probe windows the TFLite files are checked on against ONNX Runtime.
PROBE_WINDOWS = 16

_INSTALL = 'pip install "emovox[export]" (with torch==2.13.0 installed first)'


def export_tflite(model_dir: str | os.PathLike) -> dict[str, Path]:
    """Convert a model directory's ``weights.pt`` to ``model.tflite`` and ``model.int8.tflite`` in place.

    ``weights.pt`` must have the SHA-256 that ``model.json`` recorded. Both files are run in
    LiteRT's interpreter on random log-mel windows against the directory's ``model.onnx`` in ONNX
    Runtime (max |logit difference| and argmax agreement); the float file must agree within
    :data:`MAX_FLOAT_DIFF`. Their hashes and the checks go into ``model.json`` (``"sha256"``,
    ``"tflite"``), so the directory can be shipped and ``emovox export --tflite`` copies them.

    Parameters
    ----------
    model_dir : path or str
        A ``logmel_cnn`` model directory with ``weights.pt`` (or ``tiny``).

    Returns
    -------
    dict
        ``{"model.tflite": Path, "model.int8.tflite": Path}``.

    Raises
    ------
    ModelError
        Not a ``logmel_cnn`` directory, no or a changed ``weights.pt``, or a float TFLite model
        that disagrees with ONNX Runtime.
    MissingDependencyError
        litert-torch or ai-edge-litert missing (``pip install "emovox[export]"``).

    Examples
    --------
    >>> export_tflite("runs/tiny/model")  # doctest: +SKIP
    {'model.tflite': PosixPath('runs/tiny/model/model.tflite'), 'model.int8.tflite': ...}
    """
    from .onnx_export import check_weights, load_torch_model

    card = load_card(model_dir)
    src = card.directory
    check_kind(card)
    weights = src / "weights.pt"
    if not weights.is_file():
        raise ModelError(f"{weights}: not found; TFLite conversion needs the model's weights.pt")
    check_weights(weights, (card.raw.get("sha256") or {}).get("weights.pt"))
    require_converter()
    _require_interpreter()
    onnx_path = card.onnx_path()
    card.verify(onnx_path)
    x, frames = _probe(card)
    paths = convert(load_torch_model(src), n_mels=card.frontend.n_mels, frames=frames, out=src)
    checks = _verify(paths, onnx_path, x)
    _record(src, paths, checks, frames=frames, n_mels=card.frontend.n_mels,
            source="converted from weights.pt with litert-torch")
    return paths


def has_tflite(card: Any) -> bool:
    """Whether the directory of ``card`` holds both TFLite files with hashes in its model.json."""
    sha = card.raw.get("sha256") or {}
    return all((card.directory / f).is_file() and f in sha for f in TFLITE_FILES)


def tflite_into(card: Any, dst: Path, *, torch_model: Any = None, x: np.ndarray,
                onnx_path: Path) -> tuple[dict[str, dict], list[str]]:
    """Put both TFLite files of ``card``'s directory into ``dst``: copied or converted, then checked.

    Files the directory already holds with recorded hashes are hash-checked and copied (no
    converter needed; checked in LiteRT against ``onnx_path`` where ai-edge-litert is
    installed); otherwise they are converted from ``torch_model`` (the directory's hash-checked
    weights.pt) and must pass the check.

    Returns
    -------
    checks, notes
        ``{name: {max_abs_diff, argmax_agreement, n}}`` and notes for the export report.
    """
    check_kind(card)
    src = card.directory
    notes: list[str] = []
    if has_tflite(card):
        paths = {}
        for name in TFLITE_FILES:
            card.verify(src / name)
            if dst.resolve() != src.resolve():
                shutil.copy2(src / name, dst / name)
            paths[name] = dst / name
        notes.append("model.tflite, model.int8.tflite copied from the model directory (sha256 ok)")
        try:
            _require_interpreter()
        except MissingDependencyError:
            notes.append("TFLite files not run here (ai-edge-litert not installed); their hashes match model.json")
            return {}, notes
        return _verify(paths, onnx_path, x), notes
    if torch_model is None:
        raise no_tflite_source(card)
    require_converter()
    _require_interpreter()
    n_mels, frames = int(x.shape[1]), int(x.shape[2])
    paths = convert(torch_model, n_mels=n_mels, frames=frames, out=dst)
    notes.append("model.tflite, model.int8.tflite converted from weights.pt with litert-torch")
    return _verify(paths, onnx_path, x), notes


def convert(model: Any, *, n_mels: int, frames: int, out: str | os.PathLike) -> dict[str, Path]:
    """Convert a torch module to ``out/model.tflite`` (float32) and ``out/model.int8.tflite``.

    The input is fixed to one window ``[1, n_mels, frames]``. Each file is written under a
    temporary name and renamed. Needs litert-torch (the ``export`` extra).
    """
    litert_torch = require_converter()
    import torch
    from litert_torch.generative.quantize import quant_recipes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # the converter's progress tree and the quantiser's size report are noise in emovox's output
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    sample = (torch.randn(1, n_mels, frames) * 2 - 8,)  # a log-mel-like window; the shape is what counts
    model = model.eval()
    paths = {}
    for name, int8 in TFLITE_FILES.items():
        kwargs = {"quant_config": quant_recipes.full_dynamic_recipe()} if int8 else {}
        try:
            # torch.export warns about the GRU's flat weights and pytree specs; the checks verify the result
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                edge = litert_torch.convert(model, sample, **kwargs)
        except Exception as exc:  # the converter raises its own and torch.export's exception types
            raise ModelError(f"TFLite conversion of {name} failed ({str(exc).splitlines()[0][:200]})") from None
        tmp = out / (name + ".tmp")
        edge.export(str(tmp))
        os.replace(tmp, out / name)
        paths[name] = out / name
    return paths


def tflite_logits(path: str | os.PathLike, x: np.ndarray) -> np.ndarray:
    """Logits ``[n, n_classes]`` of windows ``x`` ``[n, n_mels, frames]`` in LiteRT's interpreter."""
    interp_mod = _require_interpreter()
    interp = interp_mod.Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    batch = int(inp["shape"][0])
    x = np.asarray(x, dtype=np.float32)
    if tuple(inp["shape"][1:]) != x.shape[1:]:
        raise ModelError(f"{path}: takes windows {list(inp['shape'])}, got {list(x.shape)}")
    rows = []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        interp.set_tensor(inp["index"], chunk)
        interp.invoke()
        rows.append(np.array(interp.get_tensor(outp["index"]))[: batch - pad])
    return np.concatenate(rows)


def no_tflite_source(card: Any) -> ModelError:
    """The error for a directory with neither hash-recorded TFLite files nor weights.pt."""
    return ModelError(f"{card.directory}: no model.tflite / model.int8.tflite with hashes in model.json, and no "
                      "weights.pt to convert from; TFLite export needs one or the other")


# -- helpers ----------------------------------------------------------------------------------
def check_kind(card: Any) -> None:
    """ModelError unless ``card`` is a ``logmel_cnn`` directory (the only kind with TFLite files)."""
    if card.kind != "logmel_cnn":
        raise ModelError(f"{card.directory}: TFLite export is for logmel_cnn models (the tiny CRNN), "
                         f"not {card.kind}")


def require_converter() -> Any:
    """The litert_torch module, or MissingDependencyError naming the extra to install."""
    try:
        import litert_torch
    except ImportError:
        raise MissingDependencyError(f"TFLite conversion needs litert-torch (ai-edge-torch): {_INSTALL}") from None
    return litert_torch


def _require_interpreter() -> Any:
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        raise MissingDependencyError(f"running TFLite models needs ai-edge-litert: {_INSTALL}") from None
    return interpreter


def _probe(card: Any) -> tuple[np.ndarray, int]:
    from ..features.windows import seconds_to_frames
    from .onnx_export import probe_inputs

    fe = card.frontend
    frames = int(card.raw.get("window_frames")
                 or seconds_to_frames(card.window_seconds, sr=fe.sr, hop_length=fe.hop_length))
    return probe_inputs(fe.n_mels, frames, n=PROBE_WINDOWS, seed=1), frames


def _verify(paths: dict[str, Path], onnx_path: Path, x: np.ndarray) -> dict[str, dict]:
    """Each TFLite file against ONNX Runtime on ``x``; ModelError if the float one disagrees."""
    from .onnx_export import compare, onnx_logits

    reference = onnx_logits(onnx_path, x)
    checks = {name: compare(reference, tflite_logits(path, x)) for name, path in paths.items()}
    diff = checks["model.tflite"]["max_abs_diff"]
    if not diff <= MAX_FLOAT_DIFF:  # also catches NaN
        for path in paths.values():
            path.unlink(missing_ok=True)
        raise ModelError(f"model.tflite differs from ONNX Runtime by {diff:.2e} (> {MAX_FLOAT_DIFF}); "
                         "TFLite files not kept")
    return checks


def _record(directory: Path, paths: dict[str, Path], checks: dict, *, frames: int, n_mels: int,
            source: str) -> None:
    """Add the TFLite files' SHA-256 and checks to ``directory/model.json`` (atomic rewrite)."""
    meta_path = directory / "model.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta.setdefault("sha256", {}).update({name: sha256_file(p) for name, p in paths.items()})
    meta["tflite"] = {"input": f"logmel float32 [1, {n_mels}, {frames}] (one window, fixed shape)",
                      "output": "logits float32 [1, n_classes]",
                      "int8": "model.int8.tflite: dynamic-range int8 weights, float activations",
                      "source": source,
                      "checks": checks,
                      "probe": f"{PROBE_WINDOWS} synthetic log-mel windows (seed 1) vs model.onnx in ONNX Runtime",
                      "bytes": {name: p.stat().st_size for name, p in paths.items()}}
    tmp = meta_path.with_name("model.json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, meta_path)
