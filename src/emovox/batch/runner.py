"""``emovox batch``: analyse a collection on Spark into resumable Parquet datasets.

The driver resolves the inputs, skips the files a previous run already committed, cuts the rest
into parts of ``files_per_part`` files and runs one Spark job per part (two in flight, so the
cores stay busy while a part is committed). Each job is a ``mapInPandas`` stage over the inference
core (:func:`emovox.jobs.analyze_partition`); its rows come back to the driver, which commits
them as one part of each table (:class:`~emovox.batch.store.BatchStore`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from functools import partial
from typing import Literal

from .._progress import progress
from ..errors import ParameterError
from .inputs import check_out, parse_timestamp, resolve_inputs
from .jobs import ANALYSIS_SCHEMA, analyze_partition, to_tables
from .jobs import file_key as _key
from .spark import list_audio, read_bytes, spark_session
from .store import BatchStore

__all__ = ["run_batch", "BatchResult"]


@dataclass
class BatchResult:
    """What :func:`run_batch` did."""

    out: str
    inputs: int
    skipped: int
    ok: int
    errors: int
    parts: int
    audio_seconds: float
    seconds: float
    startup_seconds: float

    @property
    def audio_hours_per_minute(self) -> float:
        return self.audio_seconds / 3600 / (self.seconds / 60) if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "audio_hours_per_minute": round(self.audio_hours_per_minute, 4)}


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _run_part(spark, files: list[str], *, read: str, partitions: int, fn) -> object:
    """One Spark job: the analysis rows (pandas) of ``files``; every file gets exactly one row."""
    import pandas as pd

    slices = max(1, min(partitions, len(files)))
    if read == "bytes":
        try:
            df = read_bytes(spark, files).repartition(slices)
        except Exception as exc:  # e.g. a manifest path that does not exist: fall back to one by one
            if len(files) == 1:
                return pd.DataFrame([{"file": files[0], "ok": False, "error": f"{files[0]}: {str(exc).splitlines()[0][:200]}",
                                      "result": "", "seconds": 0.0}])
            return pd.concat([_run_part(spark, [f], read=read, partitions=1, fn=fn) for f in files], ignore_index=True)
    else:
        rdd = spark.sparkContext.parallelize([(f,) for f in files], slices)
        df = spark.createDataFrame(rdd, "file string")
    pdf = df.mapInPandas(fn, ANALYSIS_SCHEMA).toPandas()
    pdf["file"] = [_key(f) for f in pdf["file"]]
    missing = sorted(set(map(_key, files)) - set(pdf["file"]))
    if missing:  # never lose an input, whatever Spark did with it
        pdf = pd.concat([pdf, pd.DataFrame([{"file": f, "ok": False, "error": f"{f}: no result from Spark (file missing?)",
                                             "result": "", "seconds": 0.0} for f in missing])], ignore_index=True)
    return pdf.drop_duplicates("file")


def run_batch(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    master: str | None = None,
    partitions: int | None = None,
    channels: Literal["mix", "split"] = "mix",
    model: str | os.PathLike | None = None,
    int8: bool = False,
    files_per_part: int | None = None,
    read: Literal["auto", "path", "bytes"] = "auto",
    in_flight: int = 2,
    spark=None,
    show_progress: bool = True,
) -> BatchResult:
    """Analyse every audio file of ``source`` on Spark into Parquet datasets under ``out``.

    Parameters
    ----------
    source : folder, glob, manifest CSV, audio file, or a URI Spark's Hadoop filesystem reads
    out : output folder (local path or URI); see :mod:`emovox.batch.store` for its layout
    master : Spark master (default ``local[*]``; ignored when a session is active)
    partitions : int, optional
        Tasks per part (default: Spark's default parallelism, i.e. the cores).
    channels : {"mix", "split"}
    model : model directory (default: the shipped model)
    files_per_part : int, optional
        Files committed together (default ``max(32, 8 * partitions)``); a crash loses at most the
        parts in flight.
    read : {"auto", "path", "bytes"}
        ``"bytes"`` reads through Spark's ``binaryFile`` source (default for URIs), ``"path"``
        lets each task open local paths (default for local inputs; flat memory on long files).

    Returns
    -------
    BatchResult
    """
    from ..inference import Predictor
    from ..inference.analysis import DEFAULT_CHANNEL_NAMES

    if channels not in ("mix", "split"):
        raise ParameterError(f"--channels must be 'mix' or 'split', got {channels!r}")
    if read not in ("auto", "path", "bytes"):
        raise ParameterError(f"read must be 'auto', 'path' or 'bytes', got {read!r}")
    for name, value in (("--partitions", partitions), ("--files-per-part", files_per_part)):
        if value is not None and value < 1:
            raise ParameterError(f"{name} must be >= 1, got {value}")
    out = check_out(out)
    inputs = resolve_inputs(source)
    model_dir = os.fspath(model) if model is not None else None
    predictor = Predictor.load(model_dir, int8=int8)  # a bad model fails here, before Spark starts
    card = predictor.card
    labels = list(predictor.labels)
    store = BatchStore(out)
    done = store.open({"model": f"{card.name} v{card.version} {str((card.raw.get('sha256') or {}).get('model.onnx', ''))[:12]}",
                       "channels": channels, "labels": labels, "int8": int8})
    t0 = time.perf_counter()
    spark = spark or spark_session(master)
    startup = time.perf_counter() - t0
    if inputs.uri is not None:
        listed = list_audio(spark, inputs.uri)
        files = [(p, parse_timestamp(p)) for p in listed]
        read = "bytes" if read == "auto" else read
    else:
        files = inputs.files
        read = "path" if read == "auto" else read
    if not files:
        raise ParameterError(f"{source}: no audio files found")
    stamps = dict(files)
    todo = [f for f, _ in files if _key(f) not in done]
    n_parts = partitions or spark.sparkContext.defaultParallelism
    size = files_per_part or max(32, 8 * n_parts)
    fn = partial(analyze_partition, model_dir=model_dir, int8=int8, channels=channels)
    result = BatchResult(out, len(files), len(files) - len(todo), 0, 0, 0, 0.0, 0.0, startup)
    t1 = time.perf_counter()
    chunks = list(_chunks(todo, size))
    bar = progress(_pipeline(spark, chunks, in_flight=in_flight, read=read, partitions=n_parts, fn=fn),
                   total=len(chunks), desc="parts", enabled=None if show_progress else False)
    for pdf in bar:
        pdf["timestamp"] = [stamps.get(f) or stamps.get("file:" + f) or parse_timestamp(f) for f in pdf["file"]]
        tables = to_tables(pdf, labels=labels, channel_names=DEFAULT_CHANNEL_NAMES if channels == "split" else ())
        store.commit(tables)
        result.parts += 1
        result.ok += tables["files"].num_rows
        result.errors += tables["errors"].num_rows
        result.audio_seconds += sum(tables["files"].column("duration").to_pylist())
    result.seconds = time.perf_counter() - t1
    return result


def _pipeline(spark, chunks: list[list[str]], *, in_flight: int, read: str, partitions: int, fn) -> Iterator:
    """Run the parts' Spark jobs with ``in_flight`` of them at once; yield results in completion order."""
    if not chunks:
        return
    todo = iter(chunks)
    with ThreadPoolExecutor(max_workers=max(1, in_flight)) as pool:
        pending = {pool.submit(_run_part, spark, c, read=read, partitions=partitions, fn=fn)
                   for c in (next(todo) for _ in range(min(in_flight, len(chunks))))}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.add(pool.submit(_run_part, spark, nxt, read=read, partitions=partitions, fn=fn))
                    yield fut.result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            try:
                spark.sparkContext.cancelAllJobs()
            except Exception:  # the JVM may already be gone
                print("emovox: could not cancel the running Spark jobs", file=sys.stderr)
            raise
