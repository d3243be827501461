"""Experiment (issue #5): a recipe, with overrides, on a few folds of a protocol, for a fast search.

    python experiments/probe.py crnn --protocol 1 --folds 1 3 5 --set train.batch_size=32 train.samples=30000

Each run is cached under ``runs/exp/<tag>/`` (fold by fold, as the benchmark does) and its
per-fold and mean UA are appended to ``runs/exp/probe.tsv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from emovox.evaluation.protocols import build_protocol
from emovox.evaluation.recipe import load_recipe, validate_recipe
from emovox.evaluation.runner import evaluate_protocol


def _override(recipe: dict, assignments: list[str]) -> dict:
    for a in assignments:
        key, value = a.split("=", 1)
        *path, last = key.split(".")
        node = recipe
        for p in path:
            node = node.setdefault(p, {})
        try:
            node[last] = json.loads(value)
        except json.JSONDecodeError:
            node[last] = value
    return recipe


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe")
    ap.add_argument("--protocol", default="1")
    ap.add_argument("--folds", nargs="*", type=int, help="1-based fold numbers (default: all)")
    ap.add_argument("--set", nargs="*", default=[], help="dotted.key=json overrides")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default="../shared/data")
    args = ap.parse_args()
    recipe = load_recipe(args.recipe)
    recipe = validate_recipe(_override({k: v for k, v in recipe.items() if k != "_path"}, args.set))
    data = build_protocol(args.protocol, args.data, seed=int(recipe.get("seed", 0)))
    if args.folds:
        data = dataclasses.replace(data, folds=[data.folds[k - 1] for k in args.folds])
    t0 = time.time()
    run = evaluate_protocol(recipe, data, out_dir=Path("runs/exp") / args.tag, progress=False, threads=args.threads)
    uas = [f["metrics"]["ua"] for f in run.result["folds"]]
    line = "\t".join([args.tag, args.recipe, f"p{args.protocol}", " ".join(args.set),
                      " ".join(f"{f['name']}={100 * f['metrics']['ua']:.1f}" for f in run.result["folds"]),
                      f"mean={100 * sum(uas) / len(uas):.1f}", f"{time.time() - t0:.0f}s"])
    print(line, flush=True)
    with open("runs/exp/probe.tsv", "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
