"""``emovox features --engine spark``: feature extraction as a Spark ``mapInPandas`` stage, written by the executors.

Each task runs :func:`emovox.features.extract_batch` (the same code, cache and errors as the
local engine) on its share of the files and returns the metadata and one ``double`` column per
feature; the executors write these rows with Spark's Parquet writer. The driver holds the plan and
the list of unreadable files, never the rows.

``--out`` is then a Parquet *dataset directory* (``OUT/part-*.parquet``, conventionally named
``*.parquet``): ``pandas.read_parquet(OUT)`` / ``pyarrow.parquet.read_table(OUT)`` read it as the
same table as the local engine's single file (``path, label, speaker, corpus, gender``, then one
column per feature name; row order aside). The feature configuration (``emovox.features``) is
in ``OUT/_common_metadata`` (the Arrow schema with that metadata key; readers skip ``_`` files).
Spark writes into a hidden sibling ``.OUT.<pid>.tmp``, which replaces ``OUT`` only when complete,
so a failed run leaves the previous ``OUT`` (file or directory) as it was and nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

from .._lazy import require
from ..errors import AudioError, DataError, ParameterError
from .spark import DEFAULT_MASTER, spark_session

__all__ = ["extract_features_spark", "add_engine_arguments", "run_features_spark", "features_rows"]

_META = ("path", "label", "speaker", "corpus", "gender")


def features_rows(batches: Iterator, *, set: str, names: Sequence[str], cache_dir) -> Iterator:
    """``mapInPandas`` function: the metadata columns -> metadata, ``ok``, ``error`` and one column per feature."""
    import numpy as np
    import pandas as pd

    from ..features import extract_batch

    for pdf in batches:
        paths = [str(p) for p in pdf["path"]]
        res = extract_batch(paths, set=set, cache_dir=cache_dir, progress=False, on_error="skip")
        errors = dict(res.errors)
        ok = [p not in errors for p in paths]
        X = np.asarray(res.X, dtype=np.float64)  # one row per path (NaN where unreadable)
        out = pdf[list(_META)].reset_index(drop=True)
        out["ok"] = ok
        out["error"] = [errors.get(p, "") for p in paths]
        yield pd.concat([out, pd.DataFrame(X, columns=list(names))], axis=1)


def _replace(tmp: Path, out: Path) -> None:
    """Put the finished dataset ``tmp`` at ``out`` (a previous file or dataset there is replaced)."""
    if not out.exists() and not out.is_symlink():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def extract_features_spark(items: Sequence, *, set: str = "handcrafted", out: str | os.PathLike,
                           master: str | None = None, partitions: int | None = None,
                           cache_dir: str | os.PathLike | None | bool = None, strict: bool = False,
                           spark=None) -> dict:
    """Extract feature set ``set`` of ``items`` on Spark; the executors write the Parquet dataset ``out``.

    Parameters
    ----------
    items : list of :class:`emovox.corpora.Item` (or paths: metadata columns are then empty)
    set : a feature set name of :data:`emovox.features.FEATURE_SETS` (or a ``+`` combination)
    out : the Parquet dataset directory to write (a ``*.parquet`` name; replaced atomically when complete)
    master : Spark master (default ``local[*]``)
    partitions : int, optional
        Spark tasks (default: twice the default parallelism, for balance).
    cache_dir : the feature cache of the executors (None: default; False: off)
    strict : bool
        Fail on the first unreadable file instead of leaving it out (nothing is written).

    Returns
    -------
    dict: ``out``, ``rows``, ``features``, ``errors`` (list of ``(path, message)``), ``seconds``
    """
    from ..features import feature_names
    from ..features.registry import feature_config

    require("pandas", extra="spark")
    pa = require("pyarrow", extra="spark")  # fail early, before any work
    pq = require("pyarrow.parquet", extra="spark")
    names = feature_names(set)  # unknown set: fail before Spark starts
    out = Path(out).absolute()
    if out.suffix.lower() != ".parquet":
        raise ParameterError(f"--out must name a .parquet dataset directory, got {str(out)!r}")
    if partitions is not None and partitions < 1:
        raise ParameterError(f"--partitions must be >= 1, got {partitions}")
    if not items:
        raise DataError("no audio files to extract features from")
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    t0 = time.perf_counter()
    spark = spark or spark_session(master)
    rows = []
    for i in items:
        path = os.path.abspath(getattr(i, "path", i))
        meta = [None if getattr(i, c, None) is None else str(getattr(i, c)) for c in _META[1:]]
        rows.append((path, *meta))
    meta_schema = StructType([StructField(c, StringType()) for c in _META])
    schema = StructType([*meta_schema.fields, StructField("ok", BooleanType(), False),
                         StructField("error", StringType()), *(StructField(n, DoubleType()) for n in names)])
    n = partitions or 2 * spark.sparkContext.defaultParallelism
    rdd = spark.sparkContext.parallelize(rows, max(1, min(n, len(rows))))
    fn = partial(features_rows, set=set, names=list(names), cache_dir=False if cache_dir is False else cache_dir)
    res = spark.createDataFrame(rdd, meta_schema).mapInPandas(fn, schema).persist(StorageLevel.MEMORY_AND_DISK)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        # one job extracts every file and leaves the rows on the executors; only the failures come back
        row = res.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("ok").cast("int")).alias("ok")).first()
        n_ok = int(row["ok"] or 0)
        errors = [(r["path"], r["error"]) for r in res.filter(~F.col("ok")).select("path", "error").collect()]
        if errors and strict:
            raise AudioError(errors[0][1])
        if not n_ok:
            raise DataError(f"none of the {len(rows)} files could be read")
        # a metadata column empty on every row is Arrow ``null``, as pandas -> pyarrow makes it on the local engine
        empty = {c for k, c in enumerate(_META) if all(r[k] is None for r in rows)}
        cols = [F.lit(None).alias(c) if c in empty else F.col(f"`{c}`") for c in (*_META, *names)]
        files_out = max(1, -(-n_ok // 50_000))  # a few Parquet files, not one per task
        shutil.rmtree(tmp, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        res.filter(F.col("ok")).select(*cols).coalesce(files_out).write.mode("overwrite").parquet(tmp.as_uri())
        arrow = pa.schema([*(pa.field(c, pa.null() if c in empty else pa.string()) for c in _META),
                           *(pa.field(c, pa.float64()) for c in names)])
        pq.write_metadata(arrow.with_metadata({b"emovox.features": json.dumps({"set": set, **feature_config(set)}).encode()}),
                          tmp / "_common_metadata")
        _replace(tmp, out)
    finally:
        res.unpersist()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": out, "rows": n_ok, "features": len(names), "errors": errors,
            "seconds": time.perf_counter() - t0}


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine local|spark``, ``--master`` and ``--partitions`` for ``emovox features``."""
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: worker processes on this machine, --out is one Parquet file (default); "
                        "spark: a Spark job whose executors write --out as a Parquet dataset directory")
    p.add_argument("--master", default=None, help=f"with --engine spark: Spark master (default {DEFAULT_MASTER})")
    p.add_argument("--partitions", type=int, default=None, help="with --engine spark: Spark tasks")


def run_features_spark(args: argparse.Namespace, items: Sequence) -> int:
    """The ``--engine spark`` path of ``emovox features`` (the local engine's table, as a dataset directory)."""
    cache = False if getattr(args, "no_cache", False) else getattr(args, "cache", None)
    res = extract_features_spark(items, set=args.set, out=args.out, master=args.master,
                                 partitions=args.partitions, cache_dir=cache, strict=getattr(args, "strict", False))
    for _path, message in res["errors"]:
        print(f"emovox: left out: {message}", file=sys.stderr)
    errors = f", {len(res['errors'])} unreadable file(s) left out" if res["errors"] else ""
    print(f"wrote {args.out}/ (Parquet dataset): {res['rows']} files x {res['features']} features ({args.set}) "
          f"on Spark in {res['seconds']:.1f} s{errors}")
    return 0
