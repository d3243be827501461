"""``emovox evaluate``: score a model directory (default: the shipped model) on a corpus or a manifest."""

from __future__ import annotations

import argparse
import json
import sys

from ..corpora import default_data_dir
from ..errors import ParameterError
from ..evaluation.report import command_line

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model directory (default: the shipped model)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="CSV manifest with path,label[,speaker,gender]")
    src.add_argument("--corpus", help="corpus name under --data (ravdess, tess, savee, crema-d; 'folder' = --data is a folder per label)")
    p.add_argument("--data", default=default_data_dir(), help="folder holding the corpora (default: $EMOVOX_DATA or ../shared/data)")
    p.add_argument("--json", action="store_true",
                   help='print {"ua","wa","macro_f1","per_class","confusion","labels","n"} as JSON')
    p.add_argument("--out", help="also write a run directory here (report.html, metrics.json, predictions.csv, plots)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.protocols import load_items
    from ..evaluation.report import write_run
    from ..evaluation.scoring import JSON_KEYS, score_model

    if args.corpus and args.corpus != "folder" and args.corpus.lower() not in ("ravdess", "tess", "savee", "crema-d", "cremad", "emodb"):
        raise ParameterError(f"unknown corpus {args.corpus!r}; choose ravdess, tess, savee, crema-d, emodb or folder")
    corpus = "crema-d" if args.corpus and args.corpus.lower() == "cremad" else (args.corpus.lower() if args.corpus else None)
    items = load_items(data_dir=args.data, corpora=[corpus] if corpus else [], manifest=args.manifest)
    result, rows = score_model(items, model_dir=args.model, progress=not args.no_progress, log=_stderr)
    metrics = result["pooled"]
    if args.out:
        command = command_line("evaluate", vars(args))
        write_run(args.out, result, recipe={"name": result["recipe"], "seed": 0, "model": result["model"]},
                  rows=rows, command=command)
    if args.json:
        print(json.dumps({k: metrics[k] for k in JSON_KEYS}, indent=2))
        return 0
    labels = metrics["labels"]
    print(f"model: {result['model']['dir']} ({result['model']['kind']}, {len(result['model']['labels'])} classes, "
          f"view {result['view']})")
    print(f"test: {metrics['n']} clips, {len(labels)} classes"
          + (" (predictions restricted to these)" if len(labels) < len(result["model"]["labels"]) else ""))
    print(f"UA {100 * metrics['ua']:.1f}%   WA {100 * metrics['wa']:.1f}%   macro-F1 {100 * metrics['macro_f1']:.1f}%"
          + (f"   macro AUC {metrics['auc_macro']:.3f}" if metrics.get("auc_macro") == metrics.get("auc_macro") else ""))
    print(f"\n{'emotion':<10} {'prec %':>7} {'rec %':>7} {'F1 %':>7} {'n':>6}")
    for lab in labels:
        pc = metrics["per_class"][lab]
        print(f"{lab:<10} {100 * pc['precision']:>7.1f} {100 * pc['recall']:>7.1f} {100 * pc['f1']:>7.1f} {pc['support']:>6}")
    short = [lab[:5] for lab in labels]
    print("\nconfusion (rows true, columns predicted)")
    print(f"{'':<10}" + "".join(f"{s:>7}" for s in short))
    for lab, row in zip(labels, metrics["confusion"], strict=True):
        print(f"{lab:<10}" + "".join(f"{v:>7}" for v in row))
    if args.out:
        print(f"\nreport: {args.out}/report.html")
    return 0
