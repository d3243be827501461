"""``emovox benchmark``: run the evaluation protocols for recipes, print one table, update docs/benchmarks.md.

Each (recipe, protocol) result is cached in ``runs/benchmark/<recipe>__p<N>[__quick]/`` (a full run
directory with report.html); a re-run skips finished ones and resumes unfinished ones fold by
fold. A changed recipe (any setting but its name) invalidates its cache. A compact copy of every
finished result (summary and per-fold scores, no predictions) is kept in ``docs/results/``, which
is versioned, so ``--cached-only`` rebuilds the table on a fresh clone without re-running.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ..corpora import default_data_dir
from ..errors import ParameterError

__all__ = ["add_arguments", "run", "format_table", "update_docs_section"]

DEFAULT_RECIPES = ("source_mlp", "egemaps_logreg")
SECTION = "accuracy"
# Row order of the docs table: baselines, then the neural models, then the Whisper family; any
# other recipe follows in name order.
TABLE_ORDER = ("source_mlp", "egemaps_logreg", "egemaps_logreg_smote", "egemaps_svm", "handcrafted_rf", "lstm",
               "cnn1d", "cnn_lstm", "crnn", "tiny_distilled_20k", "whisper_base_l1_logreg", "whisper_base_l2_logreg",
               "whisper_base_l3_logreg", "whisper_base_l3_logreg_spknorm", "whisper_base_l4_logreg",
               "whisper_tiny_en_l2_logreg", "whisper_tiny_en_l2_logreg_spknorm", "whisper_tiny_en_l3_logreg",
               "whisper_ser", "whisper_ser_tiny_en", "whisper_ser_6k", "whisper_embed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipes", nargs="+", help=f"recipe names or files (default: {' '.join(DEFAULT_RECIPES)})")
    p.add_argument("--protocols", nargs="+",
                   help="1 ravdess-6fold, 2 crema-d-5fold, 3 loco, 4 ravdess-random (default: these four); "
                        "1+ ravdess-6fold-plus: protocol 1 with TESS, SAVEE and CREMA-D added to every fold's training")
    p.add_argument("--folds", nargs="+",
                   help="run only these folds (names such as fold2 or heldout-tess, or 1-based numbers) and cache "
                        "them; a later run without --folds assembles the result. Lets two single-thread processes "
                        "share the folds of one protocol")
    p.add_argument("--data", default=default_data_dir(), help="folder holding the corpora (default: $EMOVOX_DATA or ../shared/data)")
    p.add_argument("--runs", default="runs/benchmark", help="cache of finished runs (default: %(default)s)")
    p.add_argument("--results",
                   help="versioned compact copies of finished results, read when --runs lacks one and written "
                        "unless --no-write (default: a results/ folder beside --docs)")
    p.add_argument("--quick", action="store_true", help="first fold only, neural epochs capped at 3")
    p.add_argument("--speed", action="store_true",
                   help="run the inference speed benchmark (alone, unless --recipes or --protocols are given)")
    p.add_argument("--model", default=None,
                   help="--speed on this model: default, tiny or a model directory (section speed, or speed-tiny "
                        "for the tiny model)")
    p.add_argument("--diarization", action="store_true",
                   help="run the diarization benchmark alone (synthetic conversations from the corpora: DER, "
                        "auto speaker count, speed) and update its section of --docs")
    p.add_argument("--conversations", type=int, default=40, help="two-speaker conversations for --diarization")
    p.add_argument("--cached-only", action="store_true",
                   help="run nothing: tabulate finished runs (a --quick run stands in for a missing full one) and "
                        "list the commands for the rest")
    p.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    p.add_argument("--docs", default="docs/benchmarks.md", help="file whose accuracy section is rewritten")
    p.add_argument("--threads", type=int, help="cap BLAS/torch threads while fitting (e.g. 1 on a shared machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _pm(s: dict | None) -> str:
    return "–" if not s else f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def _size(n: int | None) -> str:
    if not n:
        return "–"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def format_table(results: list[dict]) -> list[str]:
    """A Markdown table: recipe, protocol, UA, WA, macro-F1 (mean ± std %), size, train s, ms per clip."""
    head = ["recipe", "protocol", "folds", "UA %", "WA %", "macro-F1 %", "model size", "train s/fold", "infer ms/clip"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for r in results:
        s = r["summary"]
        infer = (r.get("infer_ms_per_clip") or 0) + (r.get("feature_ms_per_clip") or 0)
        lines.append("| " + " | ".join([
            r["recipe"], f"{r['protocol_number']} {r['protocol']}" + (" (quick)" if r.get("quick") else ""),
            str(len(r["folds"])), _pm(s.get("ua")), _pm(s.get("wa")), _pm(s.get("macro_f1")), _size(r.get("model_bytes")),
            f"{r['train_seconds']:.1f}", f"{infer:.1f}"]) + " |")
    return lines


def _loco_table(results: list[dict]) -> list[str]:
    loco = [r for r in results if r["protocol"] == "loco"]
    if not loco:
        return []
    corpora = [f["name"].removeprefix("heldout-") for f in loco[0]["folds"]]
    lines = ["", "Leave-one-corpus-out, per held-out corpus (UA / WA %; training and test restricted to the "
             "held-out corpus's labels):", "",
             "| recipe | " + " | ".join(corpora) + " | mean UA |", "|---|" + "---:|" * (len(corpora) + 1)]
    for r in loco:
        cells = {f["name"].removeprefix("heldout-"): f"{100 * f['metrics']['ua']:.1f} / {100 * f['metrics']['wa']:.1f}"
                 for f in r["folds"]}
        lines.append(f"| {r['recipe']} | " + " | ".join(cells.get(c, "–") for c in corpora)
                     + f" | {100 * r['summary']['ua']['mean']:.1f} |")
    return lines


def update_docs_section(path: str | Path, name: str, body: str) -> None:
    """Replace what lies between ``<!-- section: name -->`` and ``<!-- /section: name -->`` (keeping
    the section's first heading line) and write the file atomically."""
    from ..evaluation.report import atomic_write

    file = Path(path)
    text = file.read_text(encoding="utf-8")
    start, end = f"<!-- section: {name} -->", f"<!-- /section: {name} -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ParameterError(f"{file}: markers {start} … {end} not found")
    inner = text[i + len(start):j].strip("\n").splitlines()
    heading = inner[0] if inner and inner[0].startswith("#") else ""
    new = f"{start}\n" + (f"{heading}\n\n" if heading else "") + body.strip("\n") + f"\n\n{end}"
    atomic_write(file, text[:i] + new + text[j + len(end):])


def _run_speed(args: argparse.Namespace) -> None:
    from ..evaluation.speed import speed_benchmark
    from ..models.directory import resolve_model_dir

    model_dir = None if args.model in (None, "default") else resolve_model_dir(args.model)
    _, body = speed_benchmark(model_dir=model_dir)
    if args.model not in (None, "default"):
        body = body.replace(f"speed_benchmark(model_dir={str(model_dir)!r})", f"emovox benchmark --speed --model {args.model}")
    print(body)
    if not args.no_write:
        update_docs_section(args.docs, "speed" if args.model in (None, "default") else f"speed-{Path(str(args.model)).name}", body)


def _run_diarization(args: argparse.Namespace) -> None:
    from ..evaluation.diarization import benchmark_markdown
    from ..evaluation.report import atomic_write

    command = f"emovox benchmark --diarization --conversations {args.conversations}"
    result, body = benchmark_markdown(args.data, conversations=args.conversations, command=command,
                                      progress=None if args.no_progress else lambda m: print(m, file=sys.stderr))
    print(body)
    if not args.no_write:
        update_docs_section(args.docs, "diarization", body)
        results = Path(args.results or Path(args.docs).parent / "results")
        results.mkdir(parents=True, exist_ok=True)  # every conversation's scores, for whoever doubts the table
        atomic_write(results / "diarization.json", json.dumps({"command": command, **result}, indent=1, default=str) + "\n")


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (explicit recipes and protocols)."""
    parts = ["emovox", "benchmark", "--recipes", *args.recipes, "--protocols", *args.protocols]
    if args.data != default_data_dir():
        parts += ["--data", args.data]
    if args.runs != "runs/benchmark":
        parts += ["--runs", args.runs]
    parts += [flag for flag, on in (("--quick", args.quick), ("--speed", args.speed),
                                    ("--cached-only", args.cached_only)) if on]
    if args.threads:
        parts += ["--threads", str(args.threads)]
    return " ".join(shlex.quote(p) for p in parts)


def _run_dir(recipe: dict, key: str, runs: str, *, quick: bool) -> Path:
    from ..evaluation.protocols import PROTOCOLS

    return Path(runs) / f"{recipe['name']}__p{PROTOCOLS[key][0]}{'__quick' if quick else ''}"


def _cached(recipe: dict, key: str, runs: str, *, quick: bool, hash_of, results: str | None = None) -> dict | None:
    """The finished result of (recipe, protocol) for this exact recipe: its run directory's
    metrics.json, else its compact copy under ``results``."""
    run_dir = _run_dir(recipe, key, runs, quick=quick)
    candidates = [run_dir / "metrics.json"]
    if results:
        candidates.append(Path(results) / f"{run_dir.name}.json")
    for done in candidates:
        if done.is_file():
            saved = json.loads(done.read_text())
            if saved.get("recipe_hash") == hash_of(recipe, quick=quick):
                return saved
    return None


_COMPACT_KEYS = ("recipe", "recipe_hash", "protocol", "protocol_number", "title", "view", "speaker_independent",
                 "quick", "seed", "started", "finished", "summary", "model_bytes", "train_seconds",
                 "infer_ms_per_clip", "feature_ms_per_clip")


def compact_result(result: dict) -> dict:
    """What the table needs of a result: its summary, timings and per-fold UA / WA / macro-F1."""
    out = {k: result.get(k) for k in _COMPACT_KEYS}
    out["folds"] = [{"name": f["name"], "n_test": f.get("n_test"), "train_seconds": f.get("train_seconds"),
                     "metrics": {m: f["metrics"][m] for m in ("ua", "wa", "macro_f1")}} for f in result["folds"]]
    return out


def _keep(result: dict, results: str | None, run_dir: Path) -> None:
    """Write the compact copy of ``result`` as ``results/<run dir name>.json``."""
    if not results:
        return
    from ..evaluation.report import atomic_write

    Path(results).mkdir(parents=True, exist_ok=True)
    atomic_write(Path(results) / f"{run_dir.name}.json", json.dumps(compact_result(result), indent=1) + "\n")


def _with_kept_rows(results: list[dict], kept: str) -> list[dict]:
    """``results`` plus the finished full runs kept in ``kept`` (docs/results/) for other recipes or
    protocols, in :data:`TABLE_ORDER`, so a run of one recipe never drops the others from the docs."""
    have = {(r["recipe"], r["protocol_number"]) for r in results}
    rows = list(results)
    for f in sorted(Path(kept).glob("*__p*.json")):
        r = json.loads(f.read_text())
        if r.get("quick") or "protocol_number" not in r or (r["recipe"], r["protocol_number"]) in have:
            continue
        rows.append(r)
        have.add((r["recipe"], r["protocol_number"]))
    rank = {name: i for i, name in enumerate(TABLE_ORDER)}
    return sorted(rows, key=lambda r: (rank.get(r["recipe"], len(rank)), r["recipe"], r["protocol_number"]))


def run(args: argparse.Namespace) -> int:
    from ..evaluation.protocols import PROTOCOLS, protocol_key
    from ..evaluation.recipe import load_recipe
    from ..evaluation.runner import recipe_hash, run_protocol

    if args.diarization:
        _run_diarization(args)
        return 0
    if args.speed and not args.recipes and not args.protocols:
        _run_speed(args)
        return 0
    if args.folds and (args.quick or args.cached_only):
        raise ParameterError("--folds runs folds of a full protocol: drop --quick / --cached-only")
    args.recipes = args.recipes or list(DEFAULT_RECIPES)
    args.protocols = args.protocols or ["1", "2", "3", "4"]
    recipes = [load_recipe(r) for r in args.recipes]
    keys = [protocol_key(p) for p in args.protocols]
    command = _command(args)
    if args.results is None:
        args.results = str(Path(args.docs).parent / "results")
    keep = None if args.no_write else args.results
    results, missing = [], []
    for recipe in recipes:
        for key in keys:
            saved = _cached(recipe, key, args.runs, quick=args.quick, hash_of=recipe_hash, results=args.results)
            if saved is None and args.cached_only and not args.quick:
                saved = _cached(recipe, key, args.runs, quick=True, hash_of=recipe_hash,
                                results=args.results)  # a quick run stands in
                if saved is not None:
                    missing.append((recipe["name"], PROTOCOLS[key][0]))
            if saved is not None:
                print(f"{recipe['name']} / protocol {PROTOCOLS[key][0]}: cached", file=sys.stderr)
                results.append(saved)
                _keep(saved, keep, _run_dir(recipe, key, args.runs, quick=bool(saved.get("quick"))))
            elif args.cached_only:
                missing.append((recipe["name"], PROTOCOLS[key][0]))
            elif args.folds:
                from ..evaluation.runner import run_folds

                out = _run_dir(recipe, key, args.runs, quick=args.quick)
                done = run_folds(recipe, key, args.folds, data_dir=args.data, out_dir=out, progress=not args.no_progress, threads=args.threads)
                print(f"{recipe['name']} / protocol {PROTOCOLS[key][0]}: folds {', '.join(done)} cached in {out}; "
                      "run again without --folds to assemble the result", file=sys.stderr)
            else:
                out = _run_dir(recipe, key, args.runs, quick=args.quick)
                results.append(run_protocol(recipe, key, data_dir=args.data, out_dir=out, quick=args.quick,
                                            progress=not args.no_progress, command=command,
                                            threads=args.threads).result)
                _keep(results[-1], keep, out)
    if args.folds:
        return 0
    if not args.no_write and not args.quick:
        results = _with_kept_rows(results, args.results)  # the docs table keeps every recipe's rows
    table = format_table(results) + _loco_table(results)
    if missing:
        table += ["", "Not run yet (quick runs above stand in; each run is resumable fold by fold):", ""]
        table += [f"- `emovox benchmark --recipes {name} --protocols {number}`" for name, number in missing]
    print("\n".join(table))
    if not args.no_write:
        body = ("Mean ± sample std over folds (UA = unweighted average recall, WA = accuracy). Protocol 4 lets "
                "speakers leak between train and test and is shown only to measure that inflation. Model size is "
                "the pickled fitted estimator (neural: model.onnx); infer ms/clip = model + feature extraction "
                "per test clip (extraction timed on 8 clips of the first fold). Times were taken on the shared "
                "2-core machine while other jobs ran (load 5-15), so they vary several-fold between rows; compare "
                "the accuracy columns, not the times. Reports: `runs/benchmark/<recipe>__p<N>/report.html`.\n\n"
                + "\n".join(table) + f"\n\nCommand:\n\n```\n{command}\n```\n\nRows of recipes and protocols "
                "that command did not name come from their kept results in `docs/results/` (each made by "
                "`emovox benchmark --recipes <recipe> --protocols <N>`)."
                + ("\n\nWith --cached-only the table is assembled from finished runs; the command that computed each "
                   "row is in its `runs/benchmark/<recipe>__p<N>/run.json` and report." if args.cached_only else ""))
        update_docs_section(args.docs, SECTION, body)
        print(f"\nupdated the '{SECTION}' section of {args.docs}", file=sys.stderr)
    if args.speed:
        _run_speed(args)
    return 0
