"""Run a recipe over the folds of a protocol: fit, predict, score, and write the run directory.

Classical recipes fit on feature vectors from :func:`emovox.features.extract_many` (cached, so
every fold after the first and every re-run reads the cache); neural recipes fit
:class:`emovox.models.neural.NeuralClassifier` on waveforms, early-stopping on the fold's
validation speakers. With ``out_dir`` each finished fold is stored under ``out_dir/folds/`` and
reused by a re-run of the same recipe (resumable).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._threads import thread_limit
from ..errors import DataError, ModelError, ParameterError
from .metrics import classification_metrics, summarize_folds
from .protocols import Fold, ProtocolData, build_protocol
from .report import atomic_write, write_run

__all__ = ["RunResult", "evaluate_protocol", "run_protocol", "train_model", "recipe_hash", "QUICK_EPOCHS"]

#: Epoch cap of neural recipes in quick runs.
QUICK_EPOCHS = 3
_N_FEATURE_TIMING = 9  # the first is a warm-up; the median of the other 8 is reported


@dataclass
class RunResult:
    """What a protocol run produced: ``result`` (metrics.json), prediction rows, training histories, models."""

    result: dict
    rows: list[dict]
    histories: dict[str, list[dict]] = field(default_factory=dict)
    models: dict[str, object] = field(default_factory=dict)


def recipe_hash(recipe: dict, *, quick: bool = False) -> str:
    """A short hash of everything in a recipe that changes results (not its name or description)."""
    keep = {k: v for k, v in recipe.items() if k not in ("name", "description") and not k.startswith("_")}
    return hashlib.sha1(json.dumps([keep, quick], sort_keys=True, default=str).encode()).hexdigest()[:12]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class _NeutralReferenced:
    """Two pipelines of a ``normalise = "neutral"`` recipe: one for single clips, one for clips taken
    relative to their speaker's neutral reference -- the shipped model's two heads
    (:meth:`emovox.inference.Predictor.speaker_logits` runs the same rule on ONNX)."""

    single: Any
    relative: Any

    @property
    def classes_(self) -> list[str]:
        return [str(c) for c in self.single.classes_]

    def predict_proba(self, X: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
        from ..features.normalise import NEUTRAL_ITERATIONS, NEUTRAL_MIN_WEIGHT, neutral_reference

        if list(self.relative.classes_) != list(self.single.classes_):
            raise AssertionError("the two pipelines of a fold saw different classes")
        cols = [i for i, c in enumerate(self.single.classes_) if c in ("neutral", "calm")]
        out = np.zeros((len(X), len(self.single.classes_)))
        keys = np.asarray(speakers)
        for sp in np.unique(keys):
            rows = np.flatnonzero(keys == sp)
            single = self.single.predict_proba(X[rows])
            reference = neutral_reference(X[rows], single[:, cols].sum(axis=1),
                                          lambda Z: self.relative.predict_proba(Z)[:, cols].sum(axis=1),
                                          iterations=NEUTRAL_ITERATIONS, min_weight=NEUTRAL_MIN_WEIGHT)
            out[rows] = single if reference is None else self.relative.predict_proba(X[rows] - reference)
        return out


class _Classical:
    """Feature vectors once for all items, then one pipeline per fold."""

    def __init__(self, recipe: dict, items, *, quick: bool, progress: bool, workdir: Path | None,
                 threads: int | None = None):
        from ..features import extract_many

        self.recipe = recipe
        self.items = items
        self.X = extract_many(items, set=recipe["features"]["set"], progress=progress)
        self.XA = None  # a neutral-referenced recipe's augmented copy of each item (training rows only)
        if recipe["features"].get("normalise") == "neutral" and recipe.get("augment"):
            from .embedding_model import augmented_features

            self.XA = augmented_features(items, recipe, progress=progress)
        if recipe["features"].get("normalise") == "speaker":
            # transductive but label-free: every speaker (test speakers too) by its own statistics
            from ..features.normalise import standardise_by_group

            self.X = standardise_by_group(self.X, [it.speaker for it in items])

    def fit(self, fold: Fold, name: str):
        from ..models.classical import fit_classical

        idx = list(fold.train)  # the grid search does its own grouped inner folds; no val needed
        y = [self.items[i].label for i in idx]
        groups = [self.items[i].speaker for i in idx]
        if self.recipe["features"].get("normalise") == "neutral":
            from ..features.normalise import neutral_means_by_group
            from .embedding_model import with_augmented

            X, y, groups, references = with_augmented(self.X[idx], None if self.XA is None else self.XA[idx], y,
                                                      groups)
            single, _ = fit_classical(self.recipe, X, y, groups=groups)
            relative, search = fit_classical(self.recipe, neutral_means_by_group(X, references, y), y, groups=groups)
            return _NeutralReferenced(single, relative), search
        return fit_classical(self.recipe, self.X[idx], y, groups=groups)

    def predict_proba(self, model, idx: list[int]) -> tuple[np.ndarray, list[str]]:
        if isinstance(model, _NeutralReferenced):
            return model.predict_proba(self.X[idx], [self.items[i].speaker for i in idx]), list(model.classes_)
        return model.predict_proba(self.X[idx]), [str(c) for c in model.classes_]

    def size(self, model) -> int:
        return len(pickle.dumps(model))

    def feature_ms(self, idx: list[int]) -> float:
        from ..audio import load
        from ..features import extract

        if not idx:
            return 0.0
        feature_set = self.recipe["features"]["set"]
        extract(load(self.items[idx[0]].path), set=feature_set)  # warm-up: lazy imports, numba compilation
        times = []
        for i in idx[1:] or idx:
            t0 = time.perf_counter()
            extract(load(self.items[i].path), set=feature_set)
            times.append(time.perf_counter() - t0)
        return 1000 * float(np.median(times))


class _Neural:
    """Waveforms loaded once; one NeuralClassifier per fold, early-stopped on the validation speakers."""

    def __init__(self, recipe: dict, items, *, quick: bool, progress: bool, workdir: Path | None,
                 threads: int | None = None):
        from .._progress import progress as bar
        from ..audio import load

        self.recipe, self.items, self.quick, self.workdir, self.threads = recipe, items, quick, workdir, threads
        self.verbose = progress
        self.waves = [load(it.path) for it in bar(items, total=len(items), desc="audio", enabled=None if progress else False)]
        self.teacher_X = None
        if recipe.get("distill"):
            from .teachers import teacher_recipe

            teacher = teacher_recipe(recipe["distill"])
            if teacher["model"]["kind"] == "classical":  # the teacher's features once for all items (cached)
                from ..features import extract_many

                self.teacher_X = extract_many(items, set=teacher["features"]["set"], progress=progress)

    def fit(self, fold: Fold, name: str):
        from ..models.neural import NeuralClassifier

        est = NeuralClassifier.from_recipe(self.recipe)
        if self.quick:
            est.epochs = min(int(est.epochs), QUICK_EPOCHS)
        if self.threads:
            est.threads = self.threads
        est.verbose = self.verbose  # one line per epoch
        if self.workdir is not None:  # resumable: `emovox train` uses DIR/checkpoints, protocols one per fold
            sub = self.workdir / "checkpoints"
            est.checkpoint_dir = str(sub if name == "validation" else sub / name)
        fit_idx, val_idx = list(fold.fit), list(fold.val)
        y_fit = [self.items[i].label for i in fit_idx]
        soft = None
        if self.recipe.get("distill"):
            from .teachers import teacher_targets

            cfg = self.recipe["distill"]
            est.distill_alpha, est.distill_temperature = float(cfg["alpha"]), float(cfg["temperature"])
            soft = teacher_targets(cfg, self.items, fit_idx, sorted(set(y_fit)), workdir=self.workdir,
                                   threads=self.threads, progress=self.verbose, teacher_X=self.teacher_X)
        est.fit([self.waves[i] for i in fit_idx], y_fit,
                val=([self.waves[i] for i in val_idx], [self.items[i].label for i in val_idx]),
                groups=[self.items[i].corpus for i in fit_idx], soft_targets=soft)
        return est, {}

    def predict_proba(self, model, idx: list[int]) -> tuple[np.ndarray, list[str]]:
        return model.predict_proba([self.waves[i] for i in idx]), [str(c) for c in model.classes_]

    def size(self, model) -> int:
        """Bytes of the model.onnx that ``emovox train`` would ship for this fold's model.

        Raises
        ------
        ModelError
            The ONNX export failed: the table must not report another size (a pickle's) instead.
        """
        with tempfile.TemporaryDirectory() as tmp:
            try:
                model.save(tmp, int8=False)
            except Exception as exc:
                raise ModelError(f"model size: exporting the fold model to ONNX failed ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); the model emovox would ship cannot "
                                 "be written: fix the export before comparing sizes") from exc
            return (Path(tmp) / "model.onnx").stat().st_size

    def feature_ms(self, idx: list[int]) -> float:
        return 0.0  # the log-mel frontend runs inside predict_proba


def _save_whisper(model: Any, out: Path, recipe: dict, run: RunResult, summary: dict, training: dict) -> None:
    """Calibrate on the validation speakers, then export the model directory (int8 ONNX)."""
    from ..models._training import fit_temperature
    from ..models.whisper_ser import export_model_dir, save_checkpoint

    labels = list(model.classes_)
    log_p = np.log(np.array([[r[f"p_{lab}"] for lab in labels] for r in run.rows]) + 1e-6)
    y = np.array([labels.index(r["true"]) for r in run.rows])
    temperature, (ece_before, ece_after) = fit_temperature(log_p, y)
    # the torch weights (plain tensors + JSON) beside the model directory, for re-export and distillation
    save_checkpoint(model, out / "checkpoint" / "weights.pt", labels=labels, extra={"recipe": recipe["name"]})
    export_model_dir(model, out, labels=labels, name=recipe["name"], version=time.strftime("%Y.%m.%d"),
                     temperature=temperature, window_seconds=float(recipe["train"]["window_seconds"]),
                     metrics={"validation": summary, "ece_before": ece_before, "ece_after": ece_after},
                     training={**training, "history": getattr(model, "history_", [])})


def _whisper_backend() -> type:
    from .whisper_backend import WhisperBackend  # torch: imported only when a recipe needs it

    return WhisperBackend


def _run_fold(backend, data: ProtocolData, fold: Fold, *, first: bool,
              measure_size: bool = True) -> tuple[dict, list[dict], list[dict], object]:
    items, labels = data.items, list(fold.labels)
    t0 = time.perf_counter()
    model, search = backend.fit(fold, fold.name)
    train_s = time.perf_counter() - t0
    test = list(fold.test)
    t0 = time.perf_counter()
    raw, classes = backend.predict_proba(model, test)
    predict_s = time.perf_counter() - t0
    from ..models.classical import align_proba

    proba = align_proba(np.asarray(raw, dtype=float), classes, labels)
    y_pred = [labels[k] for k in proba.argmax(axis=1)]
    y_true = [items[i].label for i in test]
    metrics = classification_metrics(y_true, y_pred, labels=labels, proba=proba,
                                     speakers=[items[i].speaker for i in test],
                                     genders=[items[i].gender for i in test])
    history = [dict(h) for h in getattr(model, "history_", None) or []]
    info = {"name": fold.name, "labels": labels, "n_train": len(fold.train), "n_val": len(fold.val),
            "n_test": len(test), "train_seconds": round(train_s, 2),
            "infer_ms_per_clip": round(1000 * predict_s / len(test), 3), "search": search, "metrics": metrics,
            "model_bytes": backend.size(model) if first and measure_size else None,
            "feature_ms_per_clip": round(backend.feature_ms(test[:_N_FEATURE_TIMING]), 2) if first else None}
    rows = [{"fold": fold.name, "path": items[i].path, "corpus": items[i].corpus, "speaker": items[i].speaker,
             "gender": items[i].gender or "", "true": items[i].label, "pred": p,
             "confidence": round(float(proba[r].max()), 4),
             **{f"p_{lab}": round(float(proba[r, k]), 4) for k, lab in enumerate(labels)}}
            for r, (i, p) in enumerate(zip(test, y_pred, strict=True))]
    return info, rows, history, model


def _pool(folds: list[dict], rows: list[dict]) -> dict:
    labels = sorted({lab for f in folds for lab in f["labels"]})
    proba = np.array([[r.get(f"p_{lab}", 0.0) for lab in labels] for r in rows])
    return classification_metrics([r["true"] for r in rows], [r["pred"] for r in rows], labels=labels, proba=proba,
                                  speakers=[r["speaker"] for r in rows], genders=[r["gender"] or None for r in rows])


def evaluate_protocol(recipe: dict, data: ProtocolData, *, out_dir: str | Path | None = None, quick: bool = False,
                      progress: bool = True, log: Callable[[str], None] | None = _stderr,
                      keep_models: bool = False, threads: int | None = None,
                      only: Collection[str] | None = None) -> RunResult:
    """Fit and score ``recipe`` on every fold of ``data`` (only the first with ``quick``).

    With ``only`` (fold names), the other folds are read from the cache under ``out_dir`` where
    they are there and skipped where not; the result is then empty until every fold is cached.

    ``threads`` caps the BLAS/OpenMP (and torch) threads while fitting; on a shared machine
    ``threads=1`` avoids oversubscription, which slowed MLP fits 3-10x here.

    Returns
    -------
    RunResult
        ``result`` holds ``summary`` (mean ± std of UA, WA, macro-F1 over folds), ``folds`` (per-fold
        metrics and timings), ``pooled`` (metrics of all test predictions together: confusion,
        ROC, per speaker, per gender), ``model_bytes``, ``train_seconds``, ``infer_ms_per_clip``.
    """
    log = log or (lambda _msg: None)
    workdir = Path(out_dir) if out_dir is not None else None
    key = recipe_hash(recipe, quick=quick)
    folds = data.folds[:1] if quick else data.folds
    kind = recipe["model"]["kind"]
    backend_cls: type = _Neural if kind == "neural" else _whisper_backend() if kind == "whisper" else _Classical
    backend = None
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    infos, rows, histories, models = [], [], {}, {}
    for k, fold in enumerate(folds):
        cached = workdir / "folds" / f"{fold.name}.json" if workdir is not None and not keep_models else None
        if cached is not None and cached.is_file():
            saved = json.loads(cached.read_text())
            if saved.get("key") == key:
                infos.append(saved["info"])
                rows.extend(saved["rows"])
                histories[fold.name] = saved["history"]
                log(f"{recipe['name']} / {data.key} / {fold.name}: cached (UA {100 * saved['info']['metrics']['ua']:.1f}%)")
                continue
        if only is not None and fold.name not in only:
            continue
        if backend is None:
            log(f"{recipe['name']} / {data.key}: preparing {len(data.items)} items")
            backend = backend_cls(recipe, data.items, quick=quick, progress=progress, workdir=workdir, threads=threads)
        with thread_limit(threads):
            info, fold_rows, history, model = _run_fold(backend, data, fold, first=k == 0, measure_size=not keep_models)
        m = info["metrics"]
        log(f"{recipe['name']} / {data.key} / {fold.name}: UA {100 * m['ua']:.1f}%  WA {100 * m['wa']:.1f}%  "
            f"macro-F1 {100 * m['macro_f1']:.1f}%  (train {info['train_seconds']:.1f} s, n_test {info['n_test']})")
        infos.append(info)
        rows.extend(fold_rows)
        histories[fold.name] = history
        if keep_models:
            models[fold.name] = model
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(cached, json.dumps({"key": key, "info": info, "rows": fold_rows, "history": history}))
    if not infos:
        raise DataError(f"protocol {data.key} has no folds")
    if len(infos) < len(folds):  # `only` left folds to other processes
        return RunResult({}, rows, histories, models)
    first = infos[0]
    result = {
        "recipe": recipe["name"], "recipe_hash": key, "protocol": data.key, "protocol_number": data.number,
        "title": data.title, "view": data.view, "speaker_independent": data.speaker_independent,
        "quick": quick, "seed": recipe.get("seed", 0), "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "summary": summarize_folds([f["metrics"] for f in infos]),
        "model_bytes": first.get("model_bytes"),
        "train_seconds": round(float(np.mean([f["train_seconds"] for f in infos])), 2),
        "infer_ms_per_clip": round(float(np.mean([f["infer_ms_per_clip"] for f in infos])), 3),
        "feature_ms_per_clip": first.get("feature_ms_per_clip") or 0.0,
        "folds": infos,
        "pooled": _pool(infos, rows),
    }
    return RunResult(result, rows, histories, models)


def run_protocol(recipe: dict, protocol: str | int, *, data_dir: str | Path, out_dir: str | Path | None = None,
                 quick: bool = False, progress: bool = True, log: Callable[[str], None] | None = _stderr,
                 command: str | None = None, threads: int | None = None) -> RunResult:
    """Build protocol ``protocol`` on ``data_dir``, evaluate ``recipe`` on it and, with ``out_dir``, write the run.

    Examples
    --------
    >>> from emovox.evaluation.recipe import load_recipe
    >>> run = run_protocol(load_recipe("egemaps_logreg"), 1, data_dir="../shared/data",
    ...                    out_dir="runs/egemaps_logreg-1")  # doctest: +SKIP
    >>> run.result["summary"]["ua"]  # doctest: +SKIP
    {'mean': 0.5, 'std': 0.05, 'n_folds': 6}
    """
    data = build_protocol(protocol, data_dir, seed=int(recipe.get("seed", 0)))
    run = evaluate_protocol(recipe, data, out_dir=out_dir, quick=quick, progress=progress, log=log, threads=threads)
    if out_dir is not None:
        write_run(out_dir, run.result, recipe=recipe, rows=run.rows, histories=run.histories, command=command)
    return run


def run_folds(recipe: dict, protocol: str | int, folds: Sequence[str | int], *, data_dir: str | Path,
              out_dir: str | Path, progress: bool = True,
              log: Callable[[str], None] | None = _stderr, threads: int | None = None) -> list[str]:
    """Fit and score only ``folds`` (names or 1-based numbers) of ``protocol`` and cache each under
    ``out_dir/folds/``, where :func:`run_protocol` on the same ``out_dir`` finds them.

    Returns the names of the folds run (or found cached). Two processes may take disjoint folds.
    """
    data = build_protocol(protocol, data_dir, seed=int(recipe.get("seed", 0)))
    names = [f.name for f in data.folds]
    chosen = []
    for f in folds:
        text = str(f).strip()
        name = names[int(text) - 1] if text.isdigit() and 1 <= int(text) <= len(names) else text
        if name not in names:
            raise ParameterError(f"protocol {data.key} has no fold {f!r}; its folds: {', '.join(names)} "
                                 f"(or 1-{len(names)})")
        chosen.append(name)
    evaluate_protocol(recipe, data, out_dir=out_dir, progress=progress, log=log, threads=threads, only=set(chosen))
    return chosen


def train_model(recipe: dict, items, out_dir: str | Path, *, quick: bool = False, progress: bool = True,
                log: Callable[[str], None] | None = _stderr, command: str | None = None,
                threads: int | None = None) -> RunResult:
    """Train ``recipe`` on ``items`` (speakers held out for validation) and write a model directory.

    ``out_dir`` receives the model (neural: :meth:`NeuralClassifier.save`, resumable through
    ``out_dir/checkpoints``; classical: ``model.joblib`` + ``model.json`` + ``model.onnx``) and
    ``out_dir/report/`` the run directory of the validation split (report.html and the rest).
    """
    from .embedding_model import is_embedding_recipe
    from .protocols import validation_protocol

    embedding = is_embedding_recipe(recipe)  # speaker-normalised: a whisper_embed directory (or a clear refusal)
    out = Path(out_dir)
    data = validation_protocol(items, view=recipe["data"]["view"], seed=int(recipe.get("seed", 0)))
    run = evaluate_protocol(recipe, data, out_dir=out, quick=quick, progress=progress, log=log, keep_models=True,
                            threads=threads)
    model: Any = run.models["validation"]
    summary = {k: v["mean"] for k, v in run.result["summary"].items()}
    training = {"recipe": {k: v for k, v in recipe.items() if not k.startswith("_")},
                "n_train": run.result["folds"][0]["n_train"], "n_val": run.result["folds"][0]["n_val"],
                "corpora": sorted({it.corpus for it in data.items}), "validation": "held-out speakers",
                "train_seconds": run.result["train_seconds"]}
    if embedding:
        from .embedding_model import write_embedding_model

        write_embedding_model(recipe, [data.items[i] for i in data.folds[0].train], out,
                              metrics={"validation": summary},
                              training={**training, "version": time.strftime("%Y.%m.%d"),
                                        "fitted_on": "the training speakers (validation speakers held out)"},
                              progress=progress)
    elif recipe["model"]["kind"] == "classical":
        from ..models.classical import save_classical

        save_classical(model, out, recipe=recipe, n_features=int(model.named_steps["scale"].n_features_in_),
                       metrics={"validation": summary}, training={**training, "search": run.result["folds"][0]["search"]})
    elif recipe["model"]["kind"] == "whisper":
        _save_whisper(model, out, recipe, run, summary, training)
    else:
        model.save(out, name=recipe["name"], extra={"metrics": {"validation": summary}, "training": training,
                                                   "view": recipe["data"]["view"]})
    main_file = out / ("model.joblib" if recipe["model"]["kind"] == "classical" and not embedding else "model.onnx")
    run.result["model_bytes"] = main_file.stat().st_size if main_file.is_file() else None
    write_run(out / "report", run.result, recipe=recipe, rows=run.rows, histories=run.histories, command=command)
    return run
