"""``emovox features --engine spark``: feature extraction as a Spark ``mapInPandas`` stage.

Each task runs :func:`emovox.features.extract_batch` (the same code, cache and errors as the
local engine) on its share of the files; the driver writes the same table as the local CLI:
``path, label, speaker, corpus, gender`` then one column per feature name, with the feature
configuration in the Parquet schema metadata (``emovox.features``), so ``emovox train`` reads
either the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from .._lazy import require
from ..errors import AudioError, DataError, ParameterError
from ..features.table import write_feature_table
from .jobs import features_partition
from .spark import DEFAULT_MASTER, spark_session

__all__ = ["extract_features_spark", "add_engine_arguments", "run_features_spark"]

_META = ("path", "label", "speaker", "corpus", "gender")
_SCHEMA = "path string, ok boolean, error string, features array<double>"


def extract_features_spark(items: Sequence, *, set: str = "handcrafted", out: str | os.PathLike,
                           master: str | None = None, partitions: int | None = None,
                           cache_dir: str | os.PathLike | None | bool = None, strict: bool = False,
                           spark=None) -> dict:
    """Extract feature set ``set`` of ``items`` on Spark into the Parquet file ``out``.

    Parameters
    ----------
    items : list of :class:`emovox.corpora.Item` (or paths: metadata columns are then empty)
    set : a feature set name of :data:`emovox.features.FEATURE_SETS` (or a ``+`` combination)
    out : path of the ``.parquet`` file to write (atomically)
    master : Spark master (default ``local[*]``)
    partitions : int, optional
        Spark tasks (default: twice the default parallelism, for balance).
    cache_dir : the feature cache of the executors (None: default; False: off)
    strict : bool
        Fail on the first unreadable file instead of leaving it out.

    Returns
    -------
    dict: ``out``, ``rows``, ``features``, ``errors`` (list of ``(path, message)``), ``seconds``
    """
    from ..features import feature_names

    pd = require("pandas", extra="spark")
    require("pyarrow", extra="spark")  # fail early, before any work
    require("pyarrow.parquet", extra="spark")
    names = feature_names(set)  # unknown set: fail before Spark starts
    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise ParameterError(f"--out must name a .parquet file, got {str(out)!r}")
    if partitions is not None and partitions < 1:
        raise ParameterError(f"--partitions must be >= 1, got {partitions}")
    if not items:
        raise DataError("no audio files to extract features from")
    t0 = time.perf_counter()
    spark = spark or spark_session(master)
    paths = [os.path.abspath(getattr(i, "path", i)) for i in items]
    n = partitions or 2 * spark.sparkContext.defaultParallelism
    rdd = spark.sparkContext.parallelize([(p,) for p in dict.fromkeys(paths)], max(1, min(n, len(paths))))
    fn = partial(features_partition, set=set, cache_dir=False if cache_dir is False else cache_dir)
    res = spark.createDataFrame(rdd, "path string").mapInPandas(fn, _SCHEMA).toPandas()
    by_path = {r["path"]: r for r in res.to_dict("records")}
    errors = [(p, r["error"]) for p, r in by_path.items() if not r["ok"]]
    if errors and strict:
        raise AudioError(errors[0][1])
    keep = [k for k, p in enumerate(paths) if p in by_path and by_path[p]["ok"]]
    if not keep:
        raise DataError(f"none of the {len(paths)} files could be read")
    meta = pd.DataFrame({c: [getattr(items[k], c, None) if c != "path" else paths[k] for k in keep] for c in _META})
    feats = pd.DataFrame([list(by_path[paths[k]]["features"]) for k in keep], columns=names)
    write_feature_table(meta, feats, out, set=set)
    return {"out": out, "rows": len(keep), "features": len(names), "errors": errors,
            "seconds": time.perf_counter() - t0}


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine local|spark``, ``--master`` and ``--partitions`` for ``emovox features``."""
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: worker processes on this machine (default); spark: a Spark job")
    p.add_argument("--master", default=None, help=f"with --engine spark: Spark master (default {DEFAULT_MASTER})")
    p.add_argument("--partitions", type=int, default=None, help="with --engine spark: Spark tasks")


def run_features_spark(args: argparse.Namespace, items: Sequence) -> int:
    """The ``--engine spark`` path of ``emovox features`` (same output as the local engine)."""
    cache = False if getattr(args, "no_cache", False) else getattr(args, "cache", None)
    res = extract_features_spark(items, set=args.set, out=args.out, master=args.master,
                                 partitions=args.partitions, cache_dir=cache, strict=getattr(args, "strict", False))
    for _path, message in res["errors"]:
        print(f"emovox: left out: {message}", file=sys.stderr)
    errors = f", {len(res['errors'])} unreadable file(s) left out" if res["errors"] else ""
    print(f"wrote {res['out']}: {res['rows']} files x {res['features']} features ({args.set}) on Spark "
          f"in {res['seconds']:.1f} s{errors}")
    return 0
