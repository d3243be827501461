"""Measure a trained model directory on its held-out validation speakers and write its card.

    python -m emovox.evaluation.model_card --model runs/models/whisper_default [--data DIR]
    python -m emovox.evaluation.model_card --model src/emovox/assets/model-tiny --card-only

``--card-only`` measures nothing: it attaches the recipe's protocol results and re-renders the card.

Runs the model directory itself (ONNX Runtime, the same :class:`~emovox.inference.Predictor` the
CLI uses) on the validation speakers that ``emovox train`` held out for the recipe -- clean, through
a simulated telephone channel and with 10 dB noise -- then records per-corpus UA/WA, the
per-protocol results of the recipe (``docs/results/<recipe>__p<N>.json``) and the licences in
``model.json`` and ``card.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .metrics import classification_metrics

__all__ = ["measure_validation", "write_card", "main"]


def _ua_wa(y_true: list[str], y_pred: list[str]) -> dict:
    """UA and WA (rounded to 4 places) and n; UA averages over the classes in ``y_true``."""
    # every predicted label is a column too, so a prediction outside y_true's classes counts as a miss
    m = classification_metrics(y_true, y_pred, labels=sorted(set(y_true) | set(y_pred)))
    return {"ua": round(m["ua"], 4), "wa": round(m["wa"], 4), "n": m["n"]}


def measure_validation(model_dir: Path, data_dir: Path, *, recipe: dict) -> dict:
    """Per-corpus UA/WA of the model directory on the recipe's held-out validation speakers."""
    from ..audio import load
    from ..audio.augment import add_noise, telephone
    from ..inference import Predictor
    from .protocols import load_items, validation_protocol

    items = load_items(data_dir=data_dir, corpora=recipe["data"]["corpora"])
    data = validation_protocol(items, view=recipe["data"]["view"], seed=int(recipe.get("seed", 0)))
    val = [data.items[i] for i in data.folds[0].val]
    predictor = Predictor.load(model_dir)
    rng = np.random.default_rng(0)
    waves = [load(it.path) for it in val]
    channels = {"clean": waves, "telephone": [telephone(w) for w in waves],
                "noise 10 dB": [add_noise(w, rng, snr_db=(10, 10), colors=("pink",)) for w in waves]}
    out: dict = {"validation_speakers": sorted({it.speaker for it in val})}
    truth = [it.label for it in val]
    # a speaker-normalised model is measured both ways: clip by clip (its global head) and with each
    # validation speaker's clips taken together (its speaker head, as analyze() takes a call's channel)
    modes: dict[str, list[str] | None] = {"": None}
    if predictor.speaker_normalised:
        modes["_speaker"] = [it.speaker for it in val]
    for name, ws in channels.items():
        for suffix, speakers in modes.items():
            preds = [p.label for p in predictor.predict_many(ws, vad=False, speakers=speakers)]
            table = {"all": _ua_wa(truth, preds)}
            if name == "clean":
                for corpus in sorted({it.corpus for it in val}):
                    sel = [k for k, it in enumerate(val) if it.corpus == corpus]
                    table[corpus] = _ua_wa([truth[k] for k in sel], [preds[k] for k in sel])
                out[f"validation{suffix}"] = table
            else:
                out.setdefault(f"robustness{suffix}", {})[name] = table["all"]
    return out


def _protocols(results_dir: Path, recipe: str) -> list[dict]:
    found = []
    for n in (1, 2, 3, 4):
        path = results_dir / f"{recipe}__p{n}.json"
        if path.is_file():
            found.append(json.loads(path.read_text()))
    return found


def write_card(model_dir: Path, *, measured: dict, protocol_results: list[dict]) -> None:
    """Record ``measured`` and the protocol results in model.json, then render card.md."""
    from ..models._card import render_card

    meta_path = model_dir / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["metrics"] = {**meta.get("metrics", {}), **measured, "protocols": protocol_results}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    (model_dir / "card.md").write_text(render_card(meta), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emovox.evaluation.model_card", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model directory written by emovox train")
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--results", default="docs/results", help="compact protocol results of the recipe")
    ap.add_argument("--protocol-recipe", default=None, help="recipe whose protocol results go in the card")
    ap.add_argument("--card-only", action="store_true",
                    help="measure nothing: attach the protocol results and re-render card.md")
    args = ap.parse_args(argv)
    model_dir = Path(args.model)
    if not (model_dir / "model.json").is_file():
        print(f"error: {model_dir}: no model.json; --model takes a model directory written by emovox train",
              file=sys.stderr)
        return 2
    meta = json.loads((model_dir / "model.json").read_text())
    recipe = (meta.get("training") or {}).get("recipe") or {}  # the validated recipe the model was trained with
    if not recipe.get("name"):
        print(f"error: {model_dir}/model.json names no training recipe", file=sys.stderr)
        return 2
    measured = {} if args.card_only else measure_validation(model_dir, Path(args.data), recipe=recipe)
    write_card(model_dir, measured=measured,
               protocol_results=_protocols(Path(args.results), args.protocol_recipe or recipe["name"]))
    json.dump(measured, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
