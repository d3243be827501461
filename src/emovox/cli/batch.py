"""``emovox batch``: analyse a collection on Apache Spark into Parquet datasets (resumable), or keep
them current as recordings land in a watched folder (``--watch``)."""

from __future__ import annotations

import argparse
import json

from ..errors import ParameterError

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", nargs="?",
                   help="a folder, a glob ('calls/**/*.wav'), a manifest CSV (path[,timestamp]), an audio "
                        "file, or a URI Spark's Hadoop filesystem reads (hdfs://, s3a://, ...)")
    p.add_argument("--out", required=True,
                   help="output folder: segments/, files/, errors/ Parquet datasets partitioned by date "
                        "(re-run to resume)")
    p.add_argument("--master", default=None, help="Spark master: local[*] (default), local[N], spark://host:7077, yarn")
    p.add_argument("--partitions", type=int, default=None,
                   help="Spark tasks per batch (default: one per 32 inputs, at least two per core)")
    p.add_argument("--files-per-part", type=int, default=None,
                   help="inputs per batch, i.e. per Spark plan and publish (default 10000)")
    p.add_argument("--channels", choices=("mix", "split"), default="mix",
                   help="split: analyse each channel of stereo calls apart (agent left, customer right)")
    p.add_argument("--speakers", metavar="N|auto",
                   help="tell the voices of mono recordings apart: a count (2) or auto (1-4); each segment's "
                        "channel becomes speaker 1, speaker 2, ... (as emovox analyze --speakers)")
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--int8", action="store_true", help="use the int8 model (model.int8.onnx)")
    p.add_argument("--read", choices=("auto", "path", "bytes"), default="auto",
                   help="bytes: read through Spark's binaryFile source (default for URIs); "
                        "path: tasks open local paths (default for local input)")
    p.add_argument("--ship", action="store_true",
                   help="ship emovox (--py-files) and the model (spark.archives) to the executors: for a "
                        "cluster whose Python has emovox's dependencies but not emovox")
    w = p.add_argument_group("watched folder (Spark Structured Streaming)")
    w.add_argument("--watch", metavar="DIR", default=None,
                   help="keep the tables current as audio files land in DIR (or a URI); runs until stopped")
    w.add_argument("--trigger", type=float, default=10.0, metavar="SECONDS",
                   help="analyse new files every SECONDS (default 10)")
    w.add_argument("--checkpoint", default=None,
                   help="streaming checkpoint folder (default OUT/_checkpoint); keep it to restart exactly once")
    w.add_argument("--max-files-per-trigger", type=int, default=None, help="cap on files per micro-batch")
    w.add_argument("--once", action="store_true", help="analyse what DIR holds now, then stop (availableNow)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")


def run(args: argparse.Namespace) -> int:
    from .analyze import parse_speakers

    speakers = parse_speakers(args.speakers)
    if args.watch is not None:
        if args.input is not None:
            raise ParameterError("give either INPUT or --watch DIR, not both")
        from ..batch.watch import watch_folder

        counts = watch_folder(args.watch, args.out, master=args.master, channels=args.channels, speakers=speakers,
                              model=args.model, int8=args.int8, trigger_seconds=args.trigger,
                              checkpoint=args.checkpoint, max_files_per_trigger=args.max_files_per_trigger,
                              once=args.once, ship=args.ship)
        print(json.dumps(counts, indent=2) if args.json else
              f"{args.out}: {counts['batches']} micro-batch(es), {counts['ok']} analysed, {counts['errors']} errors")
        return 0
    if args.input is None:
        raise ParameterError("give INPUT (a folder, glob, manifest or URI) or --watch DIR")
    from ..batch.runner import run_batch

    res = run_batch(args.input, args.out, master=args.master, partitions=args.partitions, channels=args.channels,
                    speakers=speakers, model=args.model, int8=args.int8, files_per_part=args.files_per_part,
                    read=args.read, ship=args.ship)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
        return 0
    rate = f"{res.audio_hours_per_minute:.3f} audio h/min" if res.seconds else "nothing to do"
    print(f"{res.out}: {res.inputs} inputs, {res.skipped} already done, {res.ok} analysed, {res.errors} errors "
          f"in {res.parts} batch(es); {res.audio_seconds / 3600:.2f} h of audio in {res.seconds:.1f} s ({rate}); "
          f"Spark start {res.startup_seconds:.1f} s")
    return 0
