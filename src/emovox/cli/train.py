"""``emovox train``: train a model from a recipe, or run one evaluation protocol with it."""

from __future__ import annotations

import argparse

from ..corpora import default_data_dir
from ..errors import ParameterError
from ..evaluation.report import command_line

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", required=True, help="recipe file or name under recipes/ (e.g. egemaps_logreg)")
    p.add_argument("--data", default=default_data_dir(), help="folder holding the corpora (default: $EMOVOX_DATA or ../shared/data)")
    p.add_argument("--out", required=True, help="output folder: the model directory, or the run directory with --protocol")
    p.add_argument("--protocol", help="run evaluation protocol 1-4 (ravdess-6fold, crema-d-5fold, loco, ravdess-random) instead")
    p.add_argument("--corpus", action="append",
                   help="train on this corpus instead of the recipe's (repeatable; 'folder' = --data is a folder per label)")
    p.add_argument("--manifest", help="train on a CSV manifest (path,label[,speaker]) instead of corpora")
    p.add_argument("--quick", action="store_true", help="first fold only, neural epochs capped at 3 (a smoke test)")
    p.add_argument("--threads", type=int, help="cap BLAS/torch threads while fitting (e.g. 1 on a shared machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _summary_line(result: dict) -> str:
    s = result["summary"]
    single = len(result["folds"]) == 1
    return "  ".join(f"{label} {100 * s[k]['mean']:.1f}" + ("%" if single else f" ± {100 * s[k]['std']:.1f}%")
                     for k, label in (("ua", "UA"), ("wa", "WA"), ("macro_f1", "macro-F1")) if k in s)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.protocols import load_items
    from ..evaluation.recipe import load_recipe
    from ..evaluation.runner import run_protocol, train_model

    recipe = load_recipe(args.recipe)
    command = command_line("train", vars(args))
    progress = not args.no_progress
    if args.protocol:
        if args.manifest or args.corpus:
            raise ParameterError("--protocol uses its own corpora; drop --manifest/--corpus")
        result = run_protocol(recipe, args.protocol, data_dir=args.data, out_dir=args.out, quick=args.quick,
                              progress=progress, command=command, threads=args.threads).result
        print(f"{recipe['name']} on protocol {result['protocol_number']} ({result['protocol']}): {_summary_line(result)}")
        print(f"report: {args.out}/report.html")
        return 0
    items = load_items(data_dir=args.data, corpora=args.corpus or recipe["data"]["corpora"], manifest=args.manifest)
    result = train_model(recipe, items, args.out, quick=args.quick, progress=progress, command=command, threads=args.threads).result
    fold = result["folds"][0]
    print(f"trained {recipe['name']} ({recipe['model']['kind']} {recipe['model']['arch']}) on {fold['n_train']} clips; "
          f"validation on {fold['n_test']} clips of held-out speakers: {_summary_line(result)}")
    print(f"model: {args.out}")
    print(f"report: {args.out}/report/report.html")
    return 0
