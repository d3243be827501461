"""Train the shipped default model from a recipe, reproducibly, in one command.

::

    python -m emovox.models.train_default --data ../shared/data --recipe recipes/default.toml \\
        --out src/emovox/assets/model

Corpora come from ``[data]``; a speaker-independent validation set is held out (RAVDESS actors 1
and 2, eight CREMA-D actors balanced by sex, SAVEE speaker DC; TESS has only two speakers and stays
in training). The full model directory (with weights.pt and the checkpoint) goes to
``runs/<recipe name>/``; ``--out`` receives model.onnx, model.int8.onnx, model.json and card.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..audio import load
from ..corpora import Item, load_all
from ..errors import EmovoxError
from ..labels import get_view
from . import _training as T
from .neural import NeuralClassifier

__all__ = ["train_default", "validation_speakers", "load_waves", "protocol_results", "refresh_card", "main"]

VAL_SPEAKERS_FIXED = ("ravdess:01", "ravdess:02", "savee:DC")
CARD_FILES = ("model.onnx", "model.int8.onnx", "model.json")


def validation_speakers(items: list[Item], *, n_crema: int = 8) -> set[str]:
    """The held-out speakers: RAVDESS 01-02, SAVEE DC and the first ``n_crema`` CREMA-D actors, half per sex."""
    val = set(VAL_SPEAKERS_FIXED)
    crema = sorted({(it.speaker, it.gender) for it in items if it.corpus == "crema-d"})
    for sex in ("female", "male"):
        val.update([s for s, g in crema if g == sex][: n_crema // 2])
    return val


def load_waves(items: list[Item], *, cache_dir: str | os.PathLike | None = None) -> list[np.ndarray]:
    """Decode ``items`` at 16 kHz; with ``cache_dir``, keep them in one float16 .npy per item list."""
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256("\n".join(it.path for it in items).encode()).hexdigest()[:16]
        cache = Path(cache_dir) / f"waves-{key}.npz"
        if cache.is_file():
            z = np.load(cache)
            flat, offsets = z["flat"], z["offsets"]
            return [flat[offsets[i] : offsets[i + 1]].astype(np.float32) for i in range(len(items))]
    waves = [load(it.path) for it in items]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.concatenate([[0], np.cumsum([len(w) for w in waves])])
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, flat=np.concatenate(waves).astype(np.float16), offsets=offsets)
        os.replace(tmp, cache)
    return waves


def _metrics(logits: np.ndarray, y: np.ndarray, corpora: np.ndarray) -> dict:
    pred = logits.argmax(1)
    out = {"all": {"ua": T.unweighted_recall(y, pred), "wa": float((pred == y).mean()), "n": int(len(y))}}
    for c in np.unique(corpora):
        m = corpora == c
        out[str(c)] = {"ua": T.unweighted_recall(y[m], pred[m]), "wa": float((pred[m] == y[m]).mean()),
                       "n": int(m.sum())}
    return out


def robustness(est: NeuralClassifier, waves: list[np.ndarray], y: np.ndarray, corpora: np.ndarray,
               *, seed: int = 0) -> dict:
    """Validation metrics under channel shifts: telephone band + mu-law, pink noise at 10 dB SNR, reverb."""
    from .augment import add_noise, reverb, telephone

    rng = np.random.default_rng(seed)
    shifted = {
        "telephone": [telephone(w) for w in waves],
        "noise_10db": [add_noise(w, rng, snr_db=(10, 10), colors=("pink",)) for w in waves],
        "reverb_0.6s": [reverb(w, rng, rt60=(0.6, 0.6), wet=(0.5, 0.5)) for w in waves],
    }
    return {name: _metrics(est.decision_function(ws), y, corpora) for name, ws in shifted.items()}


def train_default(data_dir: str | os.PathLike, out_dir: str | os.PathLike | None, recipe: dict, *,
                  runs_dir: str | os.PathLike = "runs", verbose: bool = True,
                  protocols: list[dict] | None = None) -> dict:
    """Train ``recipe`` on the corpora under ``data_dir`` and write the model directory.

    ``protocols`` (compact benchmark results, see :func:`protocol_results`) go into the model card.
    Returns the validation metrics (per corpus, fp32 and int8).
    """
    t0 = time.time()
    view = get_view(recipe.get("data", {}).get("view", "7class"))
    names = recipe.get("data", {}).get("corpora") or None
    corpora = load_all(data_dir, names)
    items = [it for c in corpora.values() for it in c.items if view.map(it.label) is not None]
    val_spk = validation_speakers(items)
    train_items = [it for it in items if it.speaker not in val_spk]
    val_items = [it for it in items if it.speaker in val_spk]
    run = Path(runs_dir) / recipe.get("name", "default")
    waves = load_waves(items, cache_dir=Path(runs_dir) / "cache")
    by_path = {it.path: w for it, w in zip(items, waves, strict=True)}
    if verbose:
        print(f"{len(train_items)} training clips, {len(val_items)} validation clips "
              f"({len(val_spk)} held-out speakers), loaded in {time.time() - t0:.0f} s", flush=True)
    est = NeuralClassifier.from_recipe(recipe, checkpoint_dir=str(run / "checkpoint"), verbose=verbose)
    # items were filtered above to the ones the view maps, so every label here is a str
    val_y = [str(view.map(it.label)) for it in val_items]
    est.fit([by_path[it.path] for it in train_items], [str(view.map(it.label)) for it in train_items],
            val=([by_path[it.path] for it in val_items], val_y),
            groups=[it.corpus for it in train_items])
    minutes = (time.time() - t0) / 60

    index = {c: i for i, c in enumerate(est.classes_)}
    y = np.array([index[c] for c in val_y])
    val_corpora = np.array([it.corpus for it in val_items])
    val_windows = [est._windows(by_path[it.path]) for it in val_items]
    logits = T.clip_logits(est.model_, val_windows)
    metrics = {"validation": _metrics(logits, y, val_corpora),
               "validation_speakers": sorted(val_spk),
               "ece_before": est.metrics_["ece_before"], "ece_after": est.metrics_["ece_after"]}
    val_waves = [by_path[it.path] for it in val_items]
    metrics["robustness"] = {k: v["all"] for k, v in robustness(est, val_waves, y, val_corpora).items()}
    model_dir = run / "model"
    est.save(model_dir, name=f"emovox-{recipe.get('name', 'default')}",
             extra={"training": {"recipe": recipe, "view": view.name, "corpora": sorted(corpora),
                                 "train_clips": len(train_items), "minutes": round(minutes, 1)}})
    from .onnx_export import onnx_clip_logits

    q = onnx_clip_logits(model_dir / "model.int8.onnx", val_windows)  # one session for every clip
    metrics["validation_int8"] = _metrics(q, y, val_corpora)
    meta = json.loads((model_dir / "model.json").read_text())
    meta["metrics"].update(metrics)
    meta["metrics"]["protocols"] = protocols or []
    (model_dir / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    (model_dir / "card.md").write_text(model_card(meta))
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for f in (*CARD_FILES, "card.md"):
            shutil.copyfile(model_dir / f, out / f)
    return metrics


def protocol_results(results_dir: str | os.PathLike, recipe: str = "crnn") -> list[dict]:
    """The compact benchmark results ``<results_dir>/<recipe>__p1..4.json`` that exist, in protocol order."""
    found = []
    for n in (1, 2, 3, 4):
        f = Path(results_dir) / f"{recipe}__p{n}.json"
        if f.is_file():
            found.append(json.loads(f.read_text()))
    return found


def refresh_card(model_dir: str | os.PathLike, results: list[dict]) -> None:
    """Put per-protocol ``results`` into ``model_dir``'s model.json and re-render its card.md."""
    from ..features.cache import atomic_write

    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "model.json").read_text())
    meta.setdefault("metrics", {})["protocols"] = results
    for name, text in (("model.json", json.dumps(meta, indent=2) + "\n"), ("card.md", model_card(meta))):
        atomic_write(model_dir / name, lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8"))


def model_card(meta: dict) -> str:
    """The model card (markdown) of a model directory's ``model.json``."""
    from ._card import render_card

    return render_card(meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emovox.models.train_default", description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("EMOVOX_DATA", "../shared/data"))
    parser.add_argument("--recipe", default="recipes/default.toml")
    parser.add_argument("--out", default=None, help="also copy the ONNX files, model.json and card.md here")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--protocol-results", default="docs/results",
                        help="folder of `emovox benchmark` results shown in the card (default: %(default)s)")
    parser.add_argument("--protocol-recipe", default="crnn",
                        help="the benchmark recipe that measures this model's recipe on protocols 1-4 (default: %(default)s)")
    parser.add_argument("--card-only", action="store_true",
                        help="train nothing: put the protocol results into --out's model.json and re-render its card")
    args = parser.parse_args(argv)
    results = protocol_results(args.protocol_results, args.protocol_recipe)
    if args.card_only:
        if args.out is None or not (Path(args.out) / "model.json").is_file():
            print("error: --card-only needs --out DIR holding a model.json", file=sys.stderr)
            return 2
        refresh_card(args.out, results)
        print(f"{args.out}/card.md: {len(results)} protocol result(s) of recipe {args.protocol_recipe}")
        return 0
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(args.recipe, "rb") as f:
            recipe = tomllib.load(f)
        metrics = train_default(args.data, args.out, recipe, runs_dir=args.runs, protocols=results)
    except (EmovoxError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    print(json.dumps(metrics["validation"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
