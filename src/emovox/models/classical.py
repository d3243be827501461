"""Classical models: scikit-learn pipelines on utterance-level feature vectors.

``make_classical(recipe)`` builds StandardScaler → [SMOTE] → classifier; ``fit_classical``
optionally tunes it with GridSearchCV over speaker-GROUPED folds of the training part (never
random folds: with random folds the same speaker is on both sides and the search picks the
settings that memorise voices). A fitted pipeline is saved as a model directory with
``model.joblib``, ``model.json`` (labels, feature set) and, where skl2onnx converts it, ``model.onnx``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._lazy import require
from .._numeric import sha256_file
from ..errors import ModelError, ParameterError

__all__ = ["make_classical", "fit_classical", "save_classical", "load_classical", "classifier_for",
           "SOURCE_MLP_PARAMS", "align_proba"]

#: The source projects' MLP (speech-emotion-recognition tutorials on RAVDESS).
SOURCE_MLP_PARAMS: dict[str, Any] = {"activation": "tanh", "alpha": 0.05, "hidden_layer_sizes": (150,),
                                     "learning_rate": "adaptive", "max_iter": 500}


def classifier_for(arch: str, *, params: dict | None = None, class_weight: Any = None, seed: int = 0):
    """The unfitted scikit-learn classifier of ``arch`` (``mlp``, ``svm``, ``logreg``, ``rf``)."""
    params = dict(params or {})
    if "hidden_layer_sizes" in params:
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    if arch == "mlp":
        from sklearn.neural_network import MLPClassifier

        if class_weight is not None:
            raise ParameterError("the MLP has no class_weight; use smote = true instead")
        return MLPClassifier(**{**SOURCE_MLP_PARAMS, "random_state": seed, **params})
    extra = {"class_weight": class_weight} if class_weight is not None else {}
    if arch == "svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        # Probabilities by Platt scaling on 3 internal folds (SVC(probability=True) is deprecated).
        svc = SVC(**{"kernel": "rbf", "C": 1.0, "gamma": "scale", "random_state": seed, **extra, **params})
        return CalibratedClassifierCV(svc, method="sigmoid", cv=3, ensemble=False)
    if arch == "logreg":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(**{"C": 1.0, "max_iter": 3000, **extra, **params})
    if arch == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**{"n_estimators": 300, "random_state": seed, "n_jobs": 1,
                                         **extra, **params})
    raise ParameterError(f"unknown classical arch {arch!r}; choose mlp, svm, logreg or rf")


def make_classical(recipe: dict):
    """An unfitted pipeline for a classical recipe: scaler → [SMOTE] → classifier.

    Parameters
    ----------
    recipe : dict
        A recipe from :func:`emovox.evaluation.recipe.load_recipe` with ``[model] kind = "classical"``.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``scale``, (``smote``,) ``clf``; an ``imblearn`` pipeline when SMOTE is on, so the
        oversampling happens only while fitting, never on test data.

    Examples
    --------
    >>> from emovox.evaluation.recipe import validate_recipe
    >>> p = make_classical(validate_recipe({"name": "x", "model": {"arch": "logreg"}}))
    >>> [name for name, _ in p.steps]
    ['scale', 'clf']
    """
    model = recipe["model"]
    if model.get("kind", "classical") != "classical":
        raise ParameterError(f"recipe {recipe.get('name')!r} is not a classical model")
    require("sklearn", extra="train")
    from sklearn.preprocessing import StandardScaler

    clf = classifier_for(model["arch"], params=model.get("params"), class_weight=model.get("class_weight"),
                         seed=int(recipe.get("seed", 0)))
    if model.get("smote"):
        require("imblearn", extra="train")
        from imblearn.over_sampling import SMOTE
        from imblearn.pipeline import Pipeline as ImbPipeline

        return ImbPipeline([("scale", StandardScaler()), ("smote", SMOTE(random_state=int(recipe.get("seed", 0)))),
                            ("clf", clf)])
    from sklearn.pipeline import Pipeline

    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def fit_classical(recipe: dict, X: np.ndarray, y, *, groups=None):
    """Fit the recipe's pipeline on ``X`` [n, d], ``y`` [n]; tune it first if ``[search] grid`` is set.

    The grid search uses :class:`~sklearn.model_selection.GroupKFold` on ``groups`` (the
    speakers), ``[search] folds`` splits (fewer if there are fewer speakers) and the
    ``[search] scoring`` (default ``balanced_accuracy`` = UA), within the data given here only.

    Returns
    -------
    pipeline : fitted Pipeline
    search : dict
        ``{}`` without a search, else ``{"best_params", "best_score", "n_splits", "scoring", "results"}``.
    """
    pipeline = make_classical(recipe)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if not np.isfinite(X).all():
        raise ParameterError("feature matrix has NaN or infinite values; drop unreadable files first")
    prefix = "clf__estimator__" if recipe["model"]["arch"] == "svm" else "clf__"
    grid = {(k if "__" in k else f"{prefix}{k}"): v for k, v in recipe.get("search", {}).get("grid", {}).items()}
    n_groups = len(set(groups)) if groups is not None else 0
    if not grid:
        return _quiet_fit(pipeline, X, y), {}
    if n_groups < 2:
        warnings.warn("grid search skipped: fewer than two speakers to group folds by", stacklevel=2)
        return _quiet_fit(pipeline, X, y), {"skipped": "fewer than two speaker groups"}
    from sklearn.model_selection import GridSearchCV, GroupKFold

    grid = {k: [tuple(v) if isinstance(v, list) else v for v in vs] for k, vs in grid.items()}
    n_splits = min(int(recipe["search"].get("folds", 3)), n_groups)
    scoring = recipe["search"].get("scoring", "balanced_accuracy")
    search = GridSearchCV(pipeline, grid, cv=GroupKFold(n_splits=n_splits), scoring=scoring, n_jobs=1, refit=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=_convergence_warning())
        search.fit(X, y, groups=np.asarray(groups))
    results = [{"params": {k: _jsonable(v) for k, v in p.items()}, "score": round(float(s), 4)}
               for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True)]
    info = {"best_params": {k: _jsonable(v) for k, v in search.best_params_.items()},
            "best_score": round(float(search.best_score_), 4), "n_splits": n_splits, "scoring": scoring,
            "results": results}
    return search.best_estimator_, info


def _convergence_warning():
    from sklearn.exceptions import ConvergenceWarning

    return ConvergenceWarning


def _quiet_fit(pipeline, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=_convergence_warning())
        return pipeline.fit(X, y)


def _jsonable(v):
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


def _to_onnx(pipeline, n_features: int, path: Path) -> str | None:
    """Export the inference steps with skl2onnx; returns the reason on failure (never raises)."""
    try:
        from skl2onnx import to_onnx
        from sklearn.pipeline import Pipeline

        steps = [(n, s) for n, s in pipeline.steps if n != "smote"]
        plain = Pipeline(steps)
        with warnings.catch_warnings():  # skl2onnx reads SVC attributes scikit-learn 1.9 deprecates
            warnings.simplefilter("ignore", category=FutureWarning)
            onx = to_onnx(plain, np.zeros((1, n_features), dtype=np.float32),
                          options={id(steps[-1][1]): {"zipmap": False}}, target_opset=17)
        tmp = path.with_suffix(".onnx.tmp")
        tmp.write_bytes(onx.SerializeToString())
        os.replace(tmp, path)
        return None
    except Exception as exc:  # skl2onnx missing or an unsupported step: the joblib model still works
        return f"{type(exc).__name__}: {exc}"


def save_classical(pipeline, model_dir: str | os.PathLike, *, recipe: dict, n_features: int,
                   metrics: dict | None = None, training: dict | None = None, onnx: bool = True) -> Path:
    """Write a classical model directory: ``model.joblib``, ``model.json`` and ``model.onnx`` if convertible.

    ``model.json`` holds ``{"kind": "classical", "name", "labels", "features": {"set", "dim"},
    "view", "sha256", "metrics", "training", "onnx"}``. Files are written to temporary names and
    renamed, so an interrupted save leaves no half-written model.
    """
    joblib = require("joblib", extra="train")
    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.joblib.tmp"
    joblib.dump(pipeline, tmp)
    os.replace(tmp, out / "model.joblib")
    onnx_error = _to_onnx(pipeline, n_features, out / "model.onnx") if onnx else "not requested"
    files = ["model.joblib"] + ([] if onnx_error else ["model.onnx"])
    meta = {
        "kind": "classical",
        "name": recipe.get("name"),
        "version": 1,
        "labels": [str(c) for c in pipeline.classes_],
        "features": {"set": recipe["features"]["set"], "dim": int(n_features)},
        "view": recipe["data"]["view"],
        "arch": recipe["model"]["arch"],
        "sha256": {f: sha256_file(out / f) for f in files},
        "onnx": {"input": "X", "output": "probabilities"} if not onnx_error else {"error": onnx_error},
        "metrics": metrics or {},
        "training": training or {},
    }
    tmp_json = out / "model.json.tmp"
    tmp_json.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp_json, out / "model.json")
    return out


def load_classical(model_dir: str | os.PathLike):
    """Load ``(pipeline, meta)`` from a directory written by :func:`save_classical`.

    Raises :class:`ModelError` if a file is missing or its SHA-256 differs from ``model.json``.
    """
    joblib = require("joblib", extra="train")
    root = Path(model_dir)
    try:
        meta = json.loads((root / "model.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{root}: no readable model.json ({exc})") from None
    if meta.get("kind") != "classical":
        raise ModelError(f"{root}: not a classical model directory (kind={meta.get('kind')!r})")
    path = root / "model.joblib"
    if not path.is_file():
        raise ModelError(f"{path}: missing")
    expected = meta.get("sha256", {}).get("model.joblib")
    if expected and sha256_file(path) != expected:
        raise ModelError(f"{path}: SHA-256 does not match model.json (corrupt or replaced file)")
    return joblib.load(path), meta


def align_proba(proba: np.ndarray, classes: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Columns of ``proba`` (one per model class) reordered to ``labels``; classes not in ``labels``
    are dropped, labels the model lacks get 0, and rows are renormalised (uniform where empty)."""
    out = np.zeros((proba.shape[0], len(labels)))
    for j, c in enumerate(classes):
        if str(c) in labels:
            out[:, list(labels).index(str(c))] = proba[:, j]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 1 / len(labels)), where=total > 0)
