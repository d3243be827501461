"""``emovox report``: dataset analytics (``--data``/``--manifest``) or call analytics of a batch run (``--batch``)."""

from __future__ import annotations

import argparse
import sys

from ..errors import ParameterError

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="a data folder: the known corpora under it, or one sub-folder per label "
                                    "(default: $EMOVOX_DATA or ../shared/data)")
    src.add_argument("--manifest", action="append", metavar="CSV",
                     help="a manifest CSV (path,label[,speaker,corpus,gender]); repeatable")
    src.add_argument("--batch", metavar="DIR", help="the output folder of emovox batch: call-level analytics")
    p.add_argument("--out", required=True, help="the HTML page to write; tables go next to it")
    p.add_argument("--corpus", action="append", help="with --data: only this corpus (repeatable)")
    p.add_argument("--sample", type=int, default=None, help="at most N random clips per corpus")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for the per-clip statistics")
    p.add_argument("--cache", default=None, help="per-clip statistics cache (default: $EMOVOX_CACHE/report/...)")
    p.add_argument("--no-cache", action="store_true", help="recompute every clip's statistics, store nothing")
    p.add_argument("--top", type=int, default=40, help="with --batch: files in the per-file chart (default 40)")


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ParameterError(f"--jobs must be >= 1, got {args.jobs}")
    if args.batch:
        if args.corpus or args.sample:
            raise ParameterError("--corpus and --sample go with --data or --manifest, not --batch")
        from ..batch.report_batch import batch_report

        res = batch_report(args.batch, args.out, top=args.top)
        print(f"wrote {res['html']} ({res['files']} files, {res['errors']} errors) and "
              f"{', '.join(t.name for t in res['tables'])} in {res['seconds']:.1f} s")
        return 0
    from ..batch.report_data import collect_items, dataset_report
    from ..corpora import default_data_dir

    if args.corpus and args.manifest:
        raise ParameterError("--corpus selects corpora under --data; it cannot go with --manifest")
    data = args.data or (None if args.manifest else default_data_dir())
    items = collect_items(data=data, manifests=args.manifest or (), corpora=args.corpus,
                          warn=lambda m: print(m, file=sys.stderr))
    cache = False if args.no_cache else args.cache
    res = dataset_report(items, args.out, sample=args.sample, seed=args.seed, jobs=args.jobs, cache=cache,
                         source=", ".join(args.manifest) if args.manifest else str(data))
    bad = f", {res['errors']} unreadable" if res["errors"] else ""
    print(f"wrote {res['html']} ({res['clips']:,} clips{bad}) and {', '.join(t.name for t in res['tables'])} "
          f"in {res['seconds']:.1f} s (per-clip statistics {res['stats_seconds']:.1f} s)")
    return 0
