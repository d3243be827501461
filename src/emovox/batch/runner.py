"""``emovox batch``: analyse a collection on Spark into resumable Parquet datasets.

The driver resolves the inputs and builds one Spark plan: the inputs, minus those already in
``files`` or ``errors`` (a left anti-join against the tables, in Spark), analysed by a
``mapInArrow`` stage over the inference core (:func:`emovox.batch.jobs.analyze_arrow`), kept on
the executors (``persist``) and written by them, table by table, with Spark's Parquet writer and
commit protocol. The driver holds the plan and a few counters, never the rows; it then publishes
the batch (:class:`~emovox.batch.store.BatchStore`). Pending inputs beyond ``files_per_part`` are
cut into several such batches by a hash of their name (still no list on the driver), so a crash
loses at most the batch in flight.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Literal

from .._progress import progress
from ..errors import ParameterError
from .inputs import AUDIO_GLOB, check_out, resolve_inputs
from .jobs import ANALYZED_SCHEMA, analyze_arrow, table_arrow, table_ddl
from .spark import ship_to_cluster, spark_session
from .store import TABLES, BatchStore, new_batch_id

__all__ = ["run_batch", "BatchResult", "write_batch", "key_column", "done_frame", "settings", "check_analysis_options",
           "DEFAULT_FILES_PER_PART"]

#: Inputs per batch (one Spark plan, one publish) when ``files_per_part`` is not given.
DEFAULT_FILES_PER_PART = 10_000
#: Files per Spark task when ``partitions`` is not given.
FILES_PER_TASK = 32


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


def key_column(column: str = "path"):
    """Spark column: the name a file goes by in the tables (the rule of :func:`emovox.batch.jobs.file_key`)."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.col(column), "^file:(//)?", "")


def done_frame(spark, store: BatchStore):
    """DataFrame ``file`` of the inputs already in ``files`` or ``errors`` (None when there are none)."""
    frames = [spark.read.schema("file string").parquet(store.url(t)).select("file")
              for t in ("files", "errors") if store.has_rows(t)]
    if not frames:
        return None
    return frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])


def _glob_escape(path: str) -> str:
    """A path Hadoop's glob takes literally (``call[1].wav`` is otherwise a character class)."""
    return "".join("\\" + c if c in "[]{}*?\\" else c for c in path)


def _pending(spark, inputs, store: BatchStore, *, read: str):
    """(DataFrame of the pending inputs ``file, timestamp[, content][, error]``, input count, repartition?)."""
    from pyspark.sql import functions as F

    done = done_frame(spark, store)
    if inputs.uri is not None:  # Spark lists (and in bytes mode reads) on the executors
        scan = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                .option("pathGlobFilter", AUDIO_GLOB).load(inputs.uri))
        cols = [key_column().alias("file"), F.lit(None).cast("string").alias("timestamp")]
        df = scan.select(*cols, *(["content"] if read == "bytes" else []))
        total = scan.select("path").count()
        if done is not None:  # broadcast the done names: the bytes are never shuffled
            df = df.join(F.broadcast(done), "file", "left_anti")
        return df, total, read != "bytes"
    listed = spark.createDataFrame(inputs.files, "file string, timestamp string")
    if read != "bytes":
        df = listed if done is None else listed.join(done, "file", "left_anti")
        return df, len(inputs.files), True
    # bytes of a list of files: Spark reads those that exist; the missing ones become error rows
    # (one missing file fails only itself, issue 13 item 5)
    present = [f for f, _ in inputs.files if not _is_local(f) or os.path.isfile(f)]
    gone = [(f, t, f"{f}: no such file") for f, t in inputs.files if _is_local(f) and not os.path.isfile(f)]
    frames = []
    if present:
        scan = spark.read.format("binaryFile").load([_glob_escape(f) for f in present])
        frames.append(scan.select(key_column().alias("file"), "content")
                      .join(F.broadcast(listed), "file")
                      .select("file", "timestamp", "content", F.lit(None).cast("string").alias("error")))
    if gone:
        frames.append(spark.createDataFrame(gone, "file string, timestamp string, error string")
                      .select("file", "timestamp", F.lit(None).cast("binary").alias("content"), "error"))
    df = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    if done is not None:
        df = df.join(F.broadcast(done), "file", "left_anti")
    return df, len(inputs.files), False


def _is_local(path: str) -> bool:
    return "://" not in path and not path.startswith("file:")


def write_batch(spark, df, store: BatchStore, *, batch_id: str, labels: list[str], channel_names: tuple[str, ...],
                analyze, tasks: int | None = None) -> dict:
    """Analyse ``df`` (pending inputs) and have the executors write and the driver publish one batch.

    Returns the counters ``{"ok", "errors", "audio_seconds"}`` (computed by Spark, not from rows).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if tasks:
        df = df.repartition(tasks)
    analysed = df.mapInArrow(analyze, ANALYZED_SCHEMA).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # one job analyses every input at full parallelism and leaves the rows on the executors
        row = analysed.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("ok").cast("int")).alias("ok"),
                           F.sum(F.get_json_object("result", "$.duration").cast("double")).alias("audio")).first()
        n, ok, audio = int(row["n"]), int(row["ok"] or 0), float(row["audio"] or 0.0)
        if n == 0:
            return {"ok": 0, "errors": 0, "audio_seconds": 0.0}
        files_out = max(1, math.ceil(n / 5000))  # Parquet files per table and date: few, not one per task
        for table in TABLES:
            fn = partial(table_arrow, table=table, labels=labels, channel_names=channel_names, batch_id=batch_id)
            rows = analysed.mapInArrow(fn, table_ddl(table, labels=labels, channel_names=channel_names))
            rows.coalesce(files_out).write.mode("append").partitionBy("date").parquet(store.stage(batch_id, table))
        stats = {"ok": ok, "errors": n - ok, "audio_seconds": audio}
        store.publish(batch_id, stats=stats)
        return stats
    finally:
        analysed.unpersist()


def run_batch(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    master: str | None = None,
    partitions: int | None = None,
    channels: Literal["mix", "split"] = "mix",
    speakers: int | Literal["auto"] | None = None,
    model: str | os.PathLike | None = None,
    int8: bool = False,
    files_per_part: int | None = None,
    read: Literal["auto", "path", "bytes"] = "auto",
    ship: bool = False,
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
        Spark tasks per batch (default: one per 32 inputs, at least two per core).
    channels : {"mix", "split"}
    speakers : int, "auto" or None
        Tell the voices of mono recordings apart (``channels="mix"`` only), as
        ``emovox analyze --speakers`` does: each segment row's ``channel`` is its speaker
        (``speaker 1``, ``speaker 2``, ... in order of first appearance) and the ``files`` row's
        ``channels`` lists them. Each file is decoded whole.
    model : model directory (default: the shipped model)
    files_per_part : int, optional
        Inputs per batch, i.e. per Spark plan and publish (default 10 000); a crash loses at most
        the batch in flight.
    read : {"auto", "path", "bytes"}
        ``"bytes"`` reads through Spark's ``binaryFile`` source (default for URIs), ``"path"``
        lets each task open local paths (default for local inputs; flat memory on long files).
    ship : bool
        Ship emovox (``--py-files``) and the model (``spark.archives``) to the executors, for a
        cluster whose Python has the dependencies but not emovox (see :func:`ship_to_cluster`).

    Returns
    -------
    BatchResult
    """
    from ..inference import Predictor
    from ..inference.analysis import DEFAULT_CHANNEL_NAMES

    speakers = check_analysis_options(channels, speakers, ship=ship)
    if read not in ("auto", "path", "bytes"):
        raise ParameterError(f"read must be 'auto', 'path' or 'bytes', got {read!r}")
    for name, value in (("--partitions", partitions), ("--files-per-part", files_per_part)):
        if value is not None and value < 1:
            raise ParameterError(f"{name} must be >= 1, got {value}")
    out = check_out(out)
    inputs = resolve_inputs(source)
    model_dir = os.fspath(model) if model is not None else None
    predictor = Predictor.load(model_dir, int8=int8)  # a bad model fails here, before Spark starts
    labels = list(predictor.labels)
    store = BatchStore(out)
    store.open(settings(predictor, channels=channels, int8=int8, speakers=speakers))
    t0 = time.perf_counter()
    spark = spark or spark_session(master)
    startup = time.perf_counter() - t0
    read = ("bytes" if inputs.uri is not None else "path") if read == "auto" else read
    exec_model = ship_to_cluster(spark, model_dir) if ship else model_dir
    t1 = time.perf_counter()
    todo, total, reshuffle = _pending(spark, inputs, store, read=read)
    pending = todo.count()
    result = BatchResult(out, total, total - pending, 0, 0, 0, 0.0, 0.0, startup)
    if total == 0:
        raise ParameterError(f"{source}: no audio files found")
    size = files_per_part or DEFAULT_FILES_PER_PART
    rounds = max(1, math.ceil(pending / size)) if pending else 0
    parallelism = spark.sparkContext.defaultParallelism
    analyze = partial(analyze_arrow, model_dir=exec_model, int8=int8, channels=channels, speakers=speakers)
    names = DEFAULT_CHANNEL_NAMES if channels == "split" else ()
    from pyspark.sql import functions as F

    for r in progress(range(rounds), total=rounds, desc="batches", enabled=None if show_progress else False):
        part = todo if rounds == 1 else todo.where(F.pmod(F.xxhash64("file"), F.lit(rounds)) == r)
        n = math.ceil(pending / rounds)
        tasks = (partitions or max(2 * parallelism, math.ceil(n / FILES_PER_TASK))) if reshuffle else None
        stats = write_batch(spark, part, store, batch_id=new_batch_id(), labels=labels, channel_names=names,
                            analyze=analyze, tasks=min(tasks, max(1, n)) if tasks else None)
        result.parts += 1
        result.ok += stats["ok"]
        result.errors += stats["errors"]
        result.audio_seconds += stats["audio_seconds"]
    result.seconds = time.perf_counter() - t1
    return result


def check_analysis_options(channels: str, speakers: object, *, ship: bool = False) -> int | Literal["auto"] | None:
    """``channels`` and ``speakers`` checked before Spark starts (not once per file on the executors)."""
    if channels not in ("mix", "split"):
        raise ParameterError(f"--channels must be 'mix' or 'split', got {channels!r}")
    if speakers is None:
        return None
    from ..inference.diarization import check_speakers

    if channels != "mix":
        raise ParameterError("--speakers needs --channels mix: a split call already has one speaker per channel")
    if ship:  # the speaker encoder is read from the installed package's assets, which a --py-files zip is not
        raise ParameterError("--speakers does not work with --ship yet: install emovox on the executors "
                             "(PYSPARK_PYTHON naming a Python with emovox[spark]) instead")
    return check_speakers(speakers)


def settings(predictor, *, channels: str, int8: bool, speakers: int | Literal["auto"] | None = None) -> dict:
    """What ``_batch.json`` records (a run with another model, ``channels`` or ``speakers`` may not resume it).

    ``speakers`` is recorded only when set, so the folders of earlier runs still resume.
    """
    card = predictor.card
    sha = str((card.raw.get("sha256") or {}).get("model.onnx", ""))[:12]
    out = {"model": f"{card.name} v{card.version} {sha}", "channels": channels, "labels": list(predictor.labels),
           "int8": int8}
    if speakers is not None:
        out["speakers"] = speakers
    return out
