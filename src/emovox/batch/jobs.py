"""What runs on the executors: ``mapInArrow`` / ``mapInPandas`` functions around
:mod:`emovox.inference` and :mod:`emovox.features`, and the conversion of their output rows into
the batch tables (``segments``, ``files``, ``errors``), which the executors then write.

The model is loaded once per Python worker (a module-level cache, reused across tasks since
Spark reuses workers) with ONNX Runtime single-threaded: Spark's task slots are the parallelism.
Every input row gives exactly one output row, with the analysis as JSON or the error message;
nothing an input file does can fail the task.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Literal

from ..errors import EmovoxError
from .inputs import parse_timestamp

__all__ = ["ANALYSIS_SCHEMA", "ANALYZED_SCHEMA", "analyze_partition", "analyze_arrow", "table_arrow",
           "table_ddl", "get_predictor", "to_tables", "file_key", "SHIPPED_MODEL"]

#: Output schema of :func:`analyze_partition` (one row per input file).
ANALYSIS_SCHEMA = "file string, ok boolean, error string, result string, seconds double"
#: Output schema of :func:`analyze_arrow`: :data:`ANALYSIS_SCHEMA` plus the input's timestamp.
ANALYZED_SCHEMA = ANALYSIS_SCHEMA + ", timestamp string"

#: ``model_dir`` value meaning "the model directory shipped to the executors as a Spark archive"
#: (``spark.archives model.zip#emovox-model``; see :func:`emovox.batch.spark.ship_to_cluster`).
SHIPPED_MODEL = "spark-archive:emovox-model"

_PREDICTORS: dict[tuple, object] = {}


def file_key(path: str) -> str:
    """The name a file goes by in the tables: Spark's ``file:/a b.wav`` -> ``/a b.wav``; URIs as is.

    The same rule as the SQL expression of :func:`emovox.batch.runner.key_column`.

    >>> file_key("file:/calls/a b.wav"), file_key("file:///calls/x.wav"), file_key("s3a://b/x.wav")
    ('/calls/a b.wav', '/calls/x.wav', 's3a://b/x.wav')
    """
    if path.startswith("file://"):
        return path[len("file://"):]
    return path[len("file:"):] if path.startswith("file:") else path


def _model_path(model_dir: str | None) -> str | None:
    if model_dir == SHIPPED_MODEL:
        from pyspark import SparkFiles

        return SparkFiles.get(SHIPPED_MODEL.split(":", 1)[1])
    return model_dir


def get_predictor(model_dir: str | None, int8: bool = False):
    """The :class:`~emovox.inference.Predictor` of this worker (loaded on first use, threads=1)."""
    key = (model_dir, int8)
    if key not in _PREDICTORS:
        from ..inference import Predictor

        _PREDICTORS[key] = Predictor.load(_model_path(model_dir), int8=int8, threads=1)
    return _PREDICTORS[key]


def _analyze_one(source, name: str, predictor, channels: str,
                 speakers: int | Literal["auto"] | None = None) -> tuple[bool, str, str]:
    from ..inference import analyze

    try:
        a = analyze(source, predictor=predictor, channels=channels, name=name, speakers=speakers)
    except EmovoxError as exc:
        return False, str(exc), ""
    except Exception as exc:  # a library failing on odd input: record it, keep the partition going
        return False, f"{name}: {type(exc).__name__}: {exc}", ""
    doc = {"duration": a.duration, "channels": a.channels, "labels": a.labels, "model": a.model,
           "segments": a.segments, "summary": a.summary}
    return True, "", json.dumps(doc, ensure_ascii=False)


def analyze_partition(batches: Iterator, *, model_dir: str | None, int8: bool = False,
                      channels: str = "mix", speakers: int | Literal["auto"] | None = None) -> Iterator:
    """``mapInPandas`` function: columns ``file[, content]`` -> :data:`ANALYSIS_SCHEMA`.

    With a ``content`` column (Spark's ``binaryFile`` source) the bytes are analysed, else the
    local path ``file`` is streamed from disk. ``channels`` and ``speakers`` are
    :func:`emovox.inference.analyze`'s.
    """
    import pandas as pd

    predictor = get_predictor(model_dir, int8)
    for pdf in batches:
        rows = []
        has_content = "content" in pdf.columns
        for i in range(len(pdf)):
            file = file_key(pdf["file"].iat[i])
            t0 = time.perf_counter()
            source = bytes(pdf["content"].iat[i]) if has_content else file
            ok, error, result = _analyze_one(source, file, predictor, channels, speakers)
            rows.append({"file": file, "ok": ok, "error": error, "result": result,
                         "seconds": time.perf_counter() - t0})
        yield pd.DataFrame(rows, columns=["file", "ok", "error", "result", "seconds"])


def analyze_arrow(batches: Iterator, *, model_dir: str | None, int8: bool = False,
                  channels: str = "mix", speakers: int | Literal["auto"] | None = None) -> Iterator:
    """``mapInArrow`` function: columns ``file, timestamp[, content][, error]`` -> :data:`ANALYZED_SCHEMA`.

    ``content`` (Spark's ``binaryFile`` bytes) is analysed when the column is there, else the local
    path ``file`` is streamed from disk; a row with ``error`` set (e.g. the file vanished before it
    was read) is passed through as an error. A missing ``timestamp`` is parsed from the file name.
    ``channels`` and ``speakers`` are :func:`emovox.inference.analyze`'s: with ``speakers``, each
    segment's ``channel`` is its speaker (``speaker 1``, ...), as from ``emovox analyze --speakers``.
    """
    import pyarrow as pa

    schema = pa.schema([("file", pa.string()), ("ok", pa.bool_()), ("error", pa.string()),
                        ("result", pa.string()), ("seconds", pa.float64()), ("timestamp", pa.string())])
    predictor = None
    for batch in batches:
        cols = batch.to_pydict()
        rows = []
        for i, raw in enumerate(cols["file"]):
            file = file_key(raw)
            stamp = cols["timestamp"][i] if "timestamp" in cols else None
            stamp = stamp or parse_timestamp(file)
            failed = cols["error"][i] if "error" in cols else None
            t0 = time.perf_counter()
            if failed:
                ok, error, result = False, failed, ""
            else:
                if predictor is None:  # only now: a partition of vanished files needs no model
                    predictor = get_predictor(model_dir, int8)
                source = cols["content"][i] if "content" in cols else file
                if source is None:
                    ok, error, result = False, f"{file}: no such file (or it could not be read)", ""
                else:
                    ok, error, result = _analyze_one(source, file, predictor, channels, speakers)
            rows.append({"file": file, "ok": ok, "error": error, "result": result,
                         "seconds": time.perf_counter() - t0, "timestamp": stamp})
        yield pa.RecordBatch.from_pylist(rows, schema=schema)


def table_arrow(batches: Iterator, *, table: str, labels: list[str], channel_names: tuple[str, ...] = (),
                batch_id: str) -> Iterator:
    """``mapInArrow`` function: rows of :data:`ANALYZED_SCHEMA` -> the rows of one batch table
    (``segments``, ``files`` or ``errors``, see :func:`to_tables`) plus ``batch`` and ``date``
    (the recording's date, the partition column)."""
    import pyarrow as pa

    from .store import date_of

    for batch in batches:
        rows = batch.to_pylist()
        dates = {r["file"]: date_of(r["timestamp"]) for r in rows}
        t = to_tables(rows, labels=labels, channel_names=channel_names)[table]
        t = t.append_column("batch", pa.array([batch_id] * t.num_rows, pa.string()))
        t = t.append_column("date", pa.array([dates.get(f) for f in t.column("file").to_pylist()], pa.string()))
        yield from t.to_batches()


def table_ddl(table: str, *, labels: list[str], channel_names: tuple[str, ...] = ()) -> str:
    """The Spark DDL schema of one batch table (as :func:`to_tables` builds it) plus ``batch, date``."""
    import pyarrow as pa

    names = {pa.string(): "string", pa.float64(): "double", pa.int64(): "bigint", pa.bool_(): "boolean"}
    schema = to_tables([], labels=labels, channel_names=channel_names)[table].schema
    cols = []
    for field in schema:
        kind = "map<string,double>" if pa.types.is_map(field.type) else names[field.type]
        cols.append(f"`{field.name}` {kind}")
    return ", ".join([*cols, "`batch` string", "`date` string"])


def _peak(summary: dict, key: str) -> tuple[float | None, float | None, str | None]:
    peaks = summary.get("peaks", {}).get(key) or []
    if not peaks:
        return None, None, None
    top = max(peaks, key=lambda p: p["score"])
    return float(top["start"]), float(top["score"]), top["channel"]


def to_tables(pdf, *, labels: list[str], channel_names: tuple[str, ...] = ()) -> dict:
    """Rows of :data:`ANALYSIS_SCHEMA` plus ``timestamp`` (pandas, or a list of dicts) -> pyarrow
    tables ``segments``, ``files``, ``errors``.

    With ``channel_names`` (split stereo calls), ``files`` also has ``<name>_speech_seconds``,
    ``<name>_dominant_emotion`` and ``<name>_negative_share`` per channel.
    """
    import pyarrow as pa

    from ..inference.outputs import SEGMENT_KEYS, segment_record

    seg_rows, file_rows, err_rows = [], [], []
    for rec in (pdf.to_dict("records") if hasattr(pdf, "to_dict") else pdf):
        rec["timestamp"] = rec.get("timestamp") if isinstance(rec.get("timestamp"), str) else None
        if not rec["ok"]:
            err_rows.append({"file": rec["file"], "timestamp": rec["timestamp"], "status": "error",
                             "error": rec["error"]})
            continue
        doc = json.loads(rec["result"])
        s = doc["summary"]
        for seg in doc["segments"]:
            row = segment_record(**{k: seg[k] for k in SEGMENT_KEYS})  # the one segment shape; flattened below for BI tools
            probs = row["probabilities"]
            row["probabilities"] = [(k, float(v)) for k, v in probs.items()]
            row.update({f"p_{lab}": probs.get(lab) for lab in labels})
            seg_rows.append(row)
        start, score, channel = _peak(s, "anger")
        row = {"file": rec["file"], "timestamp": rec["timestamp"], "duration": float(doc["duration"]),
               "channels": ",".join(doc["channels"]), "speech_seconds": float(s["speech_seconds"]),
               "segments": int(s["segments"]), "dominant_emotion": s["dominant_emotion"]}
        row.update({f"share_{lab}": float(s["emotion_share"].get(lab, 0.0)) for lab in labels})
        for name in channel_names:
            c = s.get("per_channel", {}).get(name, {})
            row.update({f"{name}_speech_seconds": c.get("speech_seconds"),
                        f"{name}_dominant_emotion": c.get("dominant_emotion"),
                        f"{name}_negative_share": c.get("negative_share")})
        row.update({"negative_share": float(s["negative_share"]), "uncertain_share": float(s["uncertain_share"]),
                    "anger_peak_start": start, "anger_peak_score": score, "anger_peak_channel": channel,
                    "model": f"{doc['model'].get('name')} v{doc['model'].get('version')}",
                    "status": "ok", "seconds": float(rec["seconds"])})
        file_rows.append(row)
    seg_schema = pa.schema(
        [("file", pa.string()), ("channel", pa.string()), ("start", pa.float64()), ("end", pa.float64()),
         ("emotion", pa.string()), ("confidence", pa.float64()), ("uncertain", pa.bool_()),
         ("probabilities", pa.map_(pa.string(), pa.float64()))]
        + [(f"p_{lab}", pa.float64()) for lab in labels])
    file_schema = pa.schema(
        [("file", pa.string()), ("timestamp", pa.string()), ("duration", pa.float64()), ("channels", pa.string()),
         ("speech_seconds", pa.float64()), ("segments", pa.int64()), ("dominant_emotion", pa.string())]
        + [(f"share_{lab}", pa.float64()) for lab in labels]
        + [(f"{n}_{k}", t) for n in channel_names for k, t in (("speech_seconds", pa.float64()),
                                                                ("dominant_emotion", pa.string()),
                                                                ("negative_share", pa.float64()))]
        + [("negative_share", pa.float64()), ("uncertain_share", pa.float64()), ("anger_peak_start", pa.float64()),
           ("anger_peak_score", pa.float64()), ("anger_peak_channel", pa.string()), ("model", pa.string()),
           ("status", pa.string()), ("seconds", pa.float64())])
    err_schema = pa.schema([("file", pa.string()), ("timestamp", pa.string()), ("status", pa.string()),
                            ("error", pa.string())])
    return {"segments": pa.Table.from_pylist(seg_rows, schema=seg_schema),
            "files": pa.Table.from_pylist(file_rows, schema=file_schema),
            "errors": pa.Table.from_pylist(err_rows, schema=err_schema)}
