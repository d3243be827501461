"""``emovox batch``: analyse a collection on Apache Spark into Parquet datasets (resumable)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT",
                   help="a folder, a glob ('calls/**/*.wav'), a manifest CSV (path[,timestamp]), an audio "
                        "file, or a URI Spark's Hadoop filesystem reads (hdfs://, s3a://, ...)")
    p.add_argument("--out", required=True,
                   help="output folder: segments/, files/, errors/ Parquet datasets (re-run to resume)")
    p.add_argument("--master", default=None, help="Spark master: local[*] (default), local[N], spark://host:7077, yarn")
    p.add_argument("--partitions", type=int, default=None, help="Spark tasks per part (default: the cores)")
    p.add_argument("--files-per-part", type=int, default=None,
                   help="files committed together (default: max(32, 8 x partitions))")
    p.add_argument("--channels", choices=("mix", "split"), default="mix",
                   help="split: analyse each channel of stereo calls apart (agent left, customer right)")
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--int8", action="store_true", help="use the int8 model (model.int8.onnx)")
    p.add_argument("--read", choices=("auto", "path", "bytes"), default="auto",
                   help="bytes: read through Spark's binaryFile source (default for URIs); "
                        "path: tasks open local paths (default for local input)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")


def run(args: argparse.Namespace) -> int:
    from ..batch.runner import run_batch

    res = run_batch(args.input, args.out, master=args.master, partitions=args.partitions, channels=args.channels,
                    model=args.model, int8=args.int8, files_per_part=args.files_per_part, read=args.read)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
        return 0
    rate = f"{res.audio_hours_per_minute:.3f} audio h/min" if res.seconds else "nothing to do"
    print(f"{res.out}: {res.inputs} inputs, {res.skipped} already done, {res.ok} analysed, {res.errors} errors "
          f"in {res.parts} part(s); {res.audio_seconds / 3600:.2f} h of audio in {res.seconds:.1f} s ({rate}); "
          f"Spark start {res.startup_seconds:.1f} s")
    return 0
