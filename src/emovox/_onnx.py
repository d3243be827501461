"""ONNX Runtime helpers shared by the layers that build graphs: a quiet CPU session, int8 quantisation.

The feature layer builds the frozen Whisper encoder's graph (:mod:`emovox.features.whisper.onnx_encoder`)
and the model layer exports classifiers (:mod:`emovox.models.onnx_export`); both quantise the same way.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import ModelError

__all__ = ["onnx_session", "quantize_int8"]


def onnx_session(path: str | os.PathLike, *, threads: int = 2) -> Any:
    """An onnxruntime CPU session on ``path`` (``threads`` intra-op threads, quiet logging)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, *,
                  op_types: tuple[str, ...] = ("MatMul", "Gemm", "GRU", "LSTM")) -> Path:
    """Dynamic int8 quantisation of the weights of ``op_types`` into ``dst``, checked to load.

    Dynamic quantisation of convolutions (ConvInteger) is both slower and less accurate in
    onnxruntime on CPU, so only dense (and, where onnxruntime supports it, recurrent) layers are
    quantised; for the exported crnn that means its MatMul/Gemm layers, the GRU stays float.
    Written to a temporary name and renamed.

    Raises
    ------
    ModelError
        Quantisation failed or its result does not load in onnxruntime.
    """
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs advice through the root logger
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process

        with tempfile.TemporaryDirectory() as tmpdir:
            pre = Path(tmpdir) / "pre.onnx"
            try:
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            except Exception:  # pre-processing is an optimisation; quantise the raw graph without it
                pre = src
            quantize_dynamic(str(pre), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=list(op_types))
        onnx_session(tmp, threads=1)
    except Exception as exc:  # onnxruntime raises its own exception types
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{src}: int8 quantisation failed ({str(exc).splitlines()[0][:200]})") from None
    finally:
        root.setLevel(level)
    os.replace(tmp, dst)
    return dst
