"""Export a model directory: ONNX (from weights.pt or as is), int8 (dynamic quantisation), TFLite."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import ModelError

__all__ = ["quantize_int8"]


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Dynamic int8 quantisation (ONNX Runtime) of ``src`` into ``dst``, checked to load.

    Uses :func:`emovox.models.onnx_export.quantize_int8` (dense and recurrent layers only);
    written to a temporary name and renamed.
    """
    import onnxruntime as ort

    from ..models.onnx_export import quantize_int8 as _quantize

    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs advice through the root logger
    try:
        _quantize(src, tmp)
        ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{src}: int8 quantisation failed ({str(exc).splitlines()[0][:200]})") from None
    finally:
        root.setLevel(level)
    os.replace(tmp, dst)
    return dst
