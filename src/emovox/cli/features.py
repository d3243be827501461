"""``emovox features``: extract a feature set for a corpus or manifest into a Parquet table (cached)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .._lazy import require
from ..corpora import Item, default_data_dir, load_all, load_corpus, load_manifest
from ..errors import DataError, ParameterError
from ..features.table import write_feature_table

__all__ = ["add_arguments", "run"]

_META = ("path", "label", "speaker", "corpus", "gender")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="folder holding the corpora (default: $EMOVOX_DATA or ../shared/data)")
    src.add_argument("--manifest", action="append", metavar="CSV",
                     help="a manifest CSV (path,label[,speaker,corpus,gender]); repeatable")
    src.add_argument("--corpus-dir", action="append", metavar="NAME=PATH",
                     help="a corpus folder read by loader NAME (ravdess, tess, savee, crema-d, emodb, "
                          "folder = one sub-folder per label); repeatable")
    p.add_argument("--corpus", action="append", help="with --data: only this corpus (repeatable)")
    p.add_argument("--set", default="handcrafted",
                   help="feature set, or several joined by '+' (default: handcrafted); "
                        "see emovox.features.FEATURE_SETS")
    p.add_argument("--out", required=True,
                   help="the Parquet file to write (with --engine spark: a Parquet dataset directory)")
    p.add_argument("--cache", help="feature cache folder (default: $EMOVOX_CACHE/features or ~/.cache/emovox/features)")
    p.add_argument("--no-cache", action="store_true", help="compute everything, store nothing")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable file (default: skip it, list it, leave it out)")
    from ..batch.features import add_engine_arguments

    add_engine_arguments(p)


def _items(args: argparse.Namespace) -> list[Item]:
    if args.manifest:
        corpora = [load_manifest(m) for m in args.manifest]
    elif args.corpus_dir:
        corpora = []
        for spec in args.corpus_dir:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path:
                raise ParameterError(f"--corpus-dir takes NAME=PATH, got {spec!r}")
            corpora.append(load_corpus(name, path))
    else:
        corpora = list(load_all(args.data or default_data_dir(), args.corpus).values())
    for c in corpora:
        for s in c.skipped:
            print(f"emovox: skipped {s.path}: {s.reason}", file=sys.stderr)
    items = [i for c in corpora for i in c.items]
    if not items:
        raise DataError("no labelled audio files found in the given input")
    return items


def run(args: argparse.Namespace) -> int:
    from ..features import extract_batch, feature_names

    if args.corpus and (args.manifest or args.corpus_dir):
        raise ParameterError("--corpus selects corpora under --data; it cannot go with --manifest or --corpus-dir")
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    out = Path(args.out)
    if out.suffix.lower() != ".parquet":
        raise ParameterError(f"--out must name a .parquet file, got {args.out!r}")
    if out.exists() and out.is_dir() and args.engine != "spark":  # Spark writes (and replaces) a dataset directory
        raise ParameterError(f"--out {args.out!r} is a directory")
    feature_names(args.set)  # unknown set: fail before any work
    pd = require("pandas", extra="train")
    require("pyarrow", extra="train")  # fail early, before any work
    require("pyarrow.parquet", extra="train")
    items = _items(args)
    if args.engine == "spark":
        from ..batch.features import run_features_spark

        return run_features_spark(args, items)
    res = extract_batch(items, set=args.set, cache_dir=False if args.no_cache else args.cache,
                        n_jobs=args.jobs, progress=True, on_error="raise" if args.strict else "skip")
    bad = {p for p, _ in res.errors}
    for _path, message in res.errors:
        print(f"emovox: left out: {message}", file=sys.stderr)
    keep = [k for k, i in enumerate(items) if i.path not in bad]
    if not keep:
        raise DataError(f"none of the {len(items)} files could be read")
    meta = pd.DataFrame({c: [getattr(items[k], c) for k in keep] for c in _META})
    meta["path"] = [os.path.abspath(p) for p in meta["path"]]
    feats = pd.DataFrame(res.X[keep], columns=res.names)
    write_feature_table(meta, feats, out, set=args.set)
    errors = f", {len(res.errors)} unreadable file(s) left out" if res.errors else ""
    print(f"wrote {out}: {len(keep)} files x {len(res.names)} features ({args.set}) in {res.seconds:.1f} s, "
          f"{res.hits} cache hits, {res.computed} computed{errors}")
    return 0
