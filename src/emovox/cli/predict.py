"""``emovox predict FILE...``: the emotion of whole clips, as a table or JSON.

Unreadable files are reported on stderr (one line each) and skipped; the good ones are still
printed, and the exit status is then 3.
"""

from __future__ import annotations

import argparse
import os

# numpy is not imported yet in a CLI process: keep OpenBLAS to one thread (the log-mel's small
# products only get slower with more; ONNX Runtime has its own threads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import json
import sys

__all__ = ["add_arguments", "run", "add_model_arguments", "add_partial_argument"]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --int8, --threads: shared by predict and analyze."""
    parser.add_argument("--model", metavar="DIR", help="model directory (default: the shipped model)")
    parser.add_argument("--int8", action="store_true", help="use the int8-quantised model")
    parser.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime threads (default: all cores)")


def add_partial_argument(parser: argparse.ArgumentParser) -> None:
    """--allow-partial: shared by predict and analyze."""
    parser.add_argument("--allow-partial", action="store_true",
                        help="use what can be decoded of a truncated or damaged file (default: exit 3)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, flac, mp3, ogg, m4a, ...)")
    parser.add_argument("--json", action="store_true", help="print a JSON list of results")
    parser.add_argument("--restrict", metavar="LABELS",
                        help="comma-separated labels to choose among (probabilities renormalised)")
    parser.add_argument("--no-vad", action="store_true",
                        help="always give an emotion, even for silence, noise or music")
    add_partial_argument(parser)
    add_model_arguments(parser)
    parser.epilog = "Exit status: 0 all files done, 3 if any file could not be read (the rest are printed)."


def _row(file: str, p, duration: float) -> dict:
    return {"file": file, "channel": "mix", "start": 0.0, "end": round(duration, 3),
            "emotion": p.label, "confidence": round(p.confidence, 4), "uncertain": p.uncertain,
            "probabilities": {k: round(v, 4) for k, v in p.probabilities.items()}}


def _table(rows: list[dict]) -> str:
    head = ("file", "emotion", "confidence", "top-3")
    body = []
    for r in rows:
        top = sorted(r["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        flag = " (uncertain)" if r["uncertain"] else ""
        body.append((r["file"], r["emotion"] + flag, f"{r['confidence']:.2f}",
                     "  ".join(f"{k} {v:.2f}" for k, v in top) or "-"))
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*line).rstrip() for line in [head, *body])


def run(args: argparse.Namespace) -> int:
    from ..audio import load
    from ..errors import AudioError
    from ..inference import Predictor

    predictor = Predictor.load(args.model, int8=args.int8, threads=args.threads)
    restrict = [x.strip() for x in args.restrict.split(",") if x.strip()] if args.restrict else None
    if restrict is not None:
        predictor.label_index(restrict)  # validate before reading any file
    rows, failed = [], 0
    for file in args.files:
        try:
            y = load(file, allow_partial=args.allow_partial)
            pred = predictor.predict(y, restrict_to=restrict, vad=not args.no_vad)
        except AudioError as exc:
            print(f"emovox: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        rows.append(_row(file, pred, len(y) / 16000))
    if args.json:
        print(json.dumps(rows, indent=2))
    elif rows:
        print(_table(rows))
    return 3 if failed else 0
