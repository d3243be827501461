"""``emovox batch --watch DIR``: keep the batch tables current as recordings land in a folder.

Spark Structured Streaming's file source lists DIR every trigger and hands each new file to
exactly one micro-batch; its checkpoint (default ``OUT/_checkpoint``) records which files each
micro-batch got and which micro-batches finished. Each micro-batch is analysed and written as one
batch of the tables (:func:`emovox.batch.runner.write_batch`) with the id
``w<watcher>-<micro-batch>``: after a restart Spark re-runs an unfinished micro-batch with the same
files and id, and a batch already published is skipped, so every file lands exactly once.

Drop files in atomically (write them elsewhere on the same filesystem, then rename them into DIR):
the file source takes a file the first time it lists it.
"""

from __future__ import annotations

import json
import os
import uuid
from functools import partial
from typing import Literal

from ..errors import ParameterError
from .inputs import AUDIO_GLOB, check_out, is_remote
from .jobs import analyze_arrow
from .runner import check_analysis_options, done_frame, key_column, settings, write_batch
from .spark import ship_to_cluster, spark_session
from .store import BatchStore

__all__ = ["watch_folder"]

#: The fixed schema of Spark's ``binaryFile`` source (a streaming source must be given one).
BINARY_FILE_SCHEMA = "path string, modificationTime timestamp, length bigint, content binary"


def _watcher_id(store: BatchStore, checkpoint: str) -> str:
    """A short id bound to the checkpoint (a new checkpoint starts new micro-batch ids)."""
    name = "emovox-" + checkpoint.rstrip("/").replace("/", "_").replace(":", "_")[-80:]
    path = store.path("_batches", f".{name}.id")
    existing = store._read_json(path)
    if existing and existing.get("checkpoint") == checkpoint and os.path.isdir(checkpoint):
        return str(existing["id"])
    wid = uuid.uuid4().hex[:8]
    store._write_bytes(path, json.dumps({"id": wid, "checkpoint": checkpoint}).encode())
    return wid


def watch_folder(folder: str | os.PathLike, out: str | os.PathLike, *, master: str | None = None,
                 channels: str = "mix", speakers: int | Literal["auto"] | None = None,
                 model: str | os.PathLike | None = None, int8: bool = False,
                 trigger_seconds: float = 10.0, checkpoint: str | os.PathLike | None = None,
                 max_files_per_trigger: int | None = None, once: bool = False, ship: bool = False,
                 spark=None) -> dict:
    """Analyse the audio files that land in ``folder`` into the batch tables under ``out``.

    Runs until stopped (Ctrl-C, SIGTERM) or, with ``once=True``, until what ``folder`` holds now
    is done. Returns counters ``{"batches", "ok", "errors"}`` of this process. ``channels`` and
    ``speakers`` are those of :func:`emovox.batch.runner.run_batch`.
    """
    from ..inference import Predictor
    from ..inference.analysis import DEFAULT_CHANNEL_NAMES

    speakers = check_analysis_options(channels, speakers, ship=ship)
    if trigger_seconds <= 0:
        raise ParameterError(f"--trigger must be > 0 seconds, got {trigger_seconds}")
    folder = os.fspath(folder)
    if not is_remote(folder) and not os.path.isdir(folder):
        raise ParameterError(f"--watch {folder!r}: no such folder")
    out = check_out(out)
    model_dir = os.fspath(model) if model is not None else None
    predictor = Predictor.load(model_dir, int8=int8)
    labels = list(predictor.labels)
    store = BatchStore(out)
    store.open(settings(predictor, channels=channels, int8=int8, speakers=speakers))
    ckpt = os.fspath(checkpoint) if checkpoint is not None else store.url("_checkpoint")
    wid = _watcher_id(store, ckpt)
    spark = spark or spark_session(master)
    exec_model = ship_to_cluster(spark, model_dir) if ship else model_dir
    analyze = partial(analyze_arrow, model_dir=exec_model, int8=int8, channels=channels, speakers=speakers)
    names = DEFAULT_CHANNEL_NAMES if channels == "split" else ()
    counts = {"batches": 0, "ok": 0, "errors": 0}
    remote = is_remote(folder)

    from pyspark.sql import functions as F

    def each(df, epoch: int) -> None:
        batch = f"w{wid}-{epoch:08d}"
        if store.published(batch):  # finished before a crash; Spark re-ran it: nothing to do
            return
        pending = df.select(key_column().alias("file"), F.lit(None).cast("string").alias("timestamp"),
                            *(["content"] if remote else []))
        done = done_frame(spark, store)
        if done is not None:
            pending = pending.join(F.broadcast(done), "file", "left_anti")
        stats = write_batch(spark, pending, store, batch_id=batch, labels=labels, channel_names=names,
                            analyze=analyze, tasks=spark.sparkContext.defaultParallelism)
        counts["batches"] += 1
        counts["ok"] += stats["ok"]
        counts["errors"] += stats["errors"]

    reader = (spark.readStream.format("binaryFile").schema(BINARY_FILE_SCHEMA).option("pathGlobFilter", AUDIO_GLOB)
              .option("recursiveFileLookup", "true"))
    if max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", int(max_files_per_trigger))
    # a local folder's bytes are not read by Spark (tasks open the paths); a URI's come as bytes
    stream = reader.load(folder).select("path", *(["content"] if remote else []))
    writer = stream.writeStream.foreachBatch(each).option("checkpointLocation", ckpt).queryName(f"emovox-{wid}")
    writer = writer.trigger(availableNow=True) if once else writer.trigger(processingTime=f"{trigger_seconds} seconds")
    query = writer.start()
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()
    return counts
