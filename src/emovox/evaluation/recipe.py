"""Recipe files: one TOML file per model, read, validated and completed with defaults.

A recipe says what a model is trained on (``[data]``), what it is (``[model]``), and how it is
trained (``[features]`` + ``[search]`` for classical models, ``[train]`` + ``[augment]`` for
neural ones). The schema is in ``/work/notes/contracts.md`` and in :data:`DEFAULTS`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import DataError, ParameterError
from ..labels import VIEWS

__all__ = ["load_recipe", "validate_recipe", "find_recipe", "recipe_dirs", "DEFAULTS",
           "CLASSICAL_ARCHS", "NEURAL_ARCHS", "ALL_CORPORA"]

ALL_CORPORA = ("ravdess", "tess", "savee", "crema-d")
CLASSICAL_ARCHS = ("mlp", "svm", "logreg", "rf")
NEURAL_ARCHS = ("cnn1d", "cnn_lstm", "lstm", "crnn")
#: Pretrained-encoder models fine-tuned by emovox.models.whisper_ser.
WHISPER_ARCHS = ("whisper_ser",)

#: Every section and key a recipe may hold, with its default.
DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": "",
    "seed": 0,
    "data": {"corpora": list(ALL_CORPORA), "view": "7class"},
    "model": {"kind": "classical", "arch": "mlp", "params": {}, "class_weight": None, "smote": False},
    "features": {"set": "handcrafted"},
    # Hyper-parameter search (classical): GridSearchCV over speaker-grouped folds of the
    # training part. ``grid`` maps classifier parameters to candidate lists; empty = no search.
    "search": {"grid": {}, "folds": 3, "scoring": "balanced_accuracy"},
    "train": {"epochs": 30, "batch_size": 64, "lr": 1e-3, "patience": 8, "window_seconds": 3.0},
    "augment": {},
}

# Sections whose keys are checked strictly; [train] and [augment] belong to the neural
# trainer, which may grow keys of its own, so only the known ones are type-checked there.
_STRICT = ("data", "model", "features", "search")
# Optional keys, absent from DEFAULTS so that recipes without them keep their hash.
# [features] normalise = "speaker": each speaker's vectors standardised by that speaker's own
# statistics (emovox.features.normalise) before the model; needs several clips per speaker.
# normalise = "neutral": a second model on vectors relative to the speaker's neutral reference, used
# for a speaker with enough neutral-sounding clips (the shipped model's speaker head).
_OPTIONAL: dict[str, dict[str, tuple[str, ...]]] = {"features": {"normalise": ("speaker", "neutral")}}
_TYPES: dict[tuple[str, str], tuple[type, ...]] = {
    ("data", "corpora"): (list,), ("data", "view"): (str,),
    ("model", "kind"): (str,), ("model", "arch"): (str,), ("model", "params"): (dict,),
    ("model", "class_weight"): (str, dict, type(None)), ("model", "smote"): (bool,),
    ("features", "set"): (str,), ("search", "grid"): (dict,), ("search", "folds"): (int,),
    ("search", "scoring"): (str,), ("train", "epochs"): (int,), ("train", "batch_size"): (int,),
    ("train", "samples"): (int, type(None)),
    ("train", "lr"): (float, int), ("train", "patience"): (int,),
    ("train", "window_seconds"): (float, int),
}


def recipe_dirs() -> list[Path]:
    """Folders searched for ``<name>.toml``: ``./recipes`` then the source checkout's ``recipes/``."""
    here = Path(__file__).resolve().parents[3] / "recipes"
    dirs = [Path("recipes"), here]
    return [d for i, d in enumerate(dirs) if d.is_dir() and d.resolve() not in {x.resolve() for x in dirs[:i]}]


def find_recipe(name_or_path: str | os.PathLike) -> Path:
    """Resolve a recipe path, or a bare name such as ``"source_mlp"`` looked up in :func:`recipe_dirs`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".toml") else path.name
    for folder in recipe_dirs():
        candidate = folder / f"{stem}.toml"
        if candidate.is_file():
            return candidate
    known = sorted({p.stem for d in recipe_dirs() for p in d.glob("*.toml")})
    raise ParameterError(f"recipe {str(name_or_path)!r} not found; known recipes: {', '.join(known) or 'none'}")


def load_recipe(path: str | os.PathLike) -> dict:
    """Read a recipe TOML file (or a recipe name), validate it and fill in the defaults.

    Parameters
    ----------
    path : str or path-like
        A ``.toml`` file, or the name of one under ``recipes/``.

    Returns
    -------
    dict
        The complete recipe: every section of :data:`DEFAULTS`, ``name`` defaulting to the file stem.

    Examples
    --------
    >>> r = load_recipe("source_mlp")  # doctest: +SKIP
    >>> r["model"]["arch"], r["features"]["set"]  # doctest: +SKIP
    ('mlp', 'handcrafted')
    """
    file = find_recipe(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"{file}: not a readable TOML recipe ({exc})") from None
    raw.setdefault("name", file.stem)
    recipe = validate_recipe(raw, source=str(file))
    recipe["_path"] = str(file)
    return recipe


def validate_recipe(raw: dict, *, source: str = "recipe") -> dict:
    """Check a recipe dict against the schema and return a completed deep copy.

    Raises :class:`ParameterError` naming the section, the key and what is allowed.
    """
    if not isinstance(raw, dict):
        raise ParameterError(f"{source}: a recipe is a table of sections")
    unknown = set(raw) - set(DEFAULTS) - {"_path", "distill"}
    if unknown:
        raise ParameterError(f"{source}: unknown section(s) or key(s) {sorted(unknown)}; allowed: {sorted(DEFAULTS)}")
    out = copy.deepcopy(DEFAULTS)
    for key in ("name", "description", "seed"):
        if key in raw:
            out[key] = raw[key]
    for section, defaults in DEFAULTS.items():
        if not isinstance(defaults, dict) or section not in raw:
            continue
        given = raw[section]
        if not isinstance(given, dict):
            raise ParameterError(f"{source}: [{section}] must be a table")
        if section in _STRICT:
            optional = _OPTIONAL.get(section, {})
            extra = set(given) - set(defaults) - set(optional)
            if extra:
                raise ParameterError(f"{source}: unknown key(s) {sorted(extra)} in [{section}]; "
                                     f"allowed: {sorted(set(defaults) | set(optional))}")
            for key, allowed in optional.items():
                if key in given and given[key] not in allowed:
                    raise ParameterError(f"{source}: [{section}] {key} must be one of {list(allowed)}, "
                                         f"got {given[key]!r}")
        out[section] = {**defaults, **copy.deepcopy(given)}
    if "distill" in raw:  # optional, and absent from DEFAULTS so recipes without it keep their hash
        out["distill"] = _distill_section(raw["distill"], source)
    if "kind" not in raw.get("model", {}) and raw.get("model", {}).get("arch") in NEURAL_ARCHS:
        out["model"]["kind"] = "neural"
    _check(out, source)
    return out


_DISTILL = {"teacher": (str,), "alpha": (float, int), "temperature": (float, int), "folds": (int,),
            "teacher_train": (dict,)}


def _distill_section(given: object, source: str) -> dict:
    """``[distill]``: a teacher recipe (classical or whisper) whose cross-fitted probabilities guide a neural student.

    ``teacher_train`` overrides a whisper teacher's ``[train]`` keys (see :mod:`emovox.evaluation.teachers`).
    """
    if not isinstance(given, dict):
        raise ParameterError(f"{source}: [distill] must be a table")
    extra = set(given) - set(_DISTILL)
    if extra:
        raise ParameterError(f"{source}: unknown key(s) {sorted(extra)} in [distill]; allowed: {sorted(_DISTILL)}")
    out = {"teacher": "egemaps_logreg", "alpha": 0.5, "temperature": 2.0, "folds": 5, **given}
    for key, types in _DISTILL.items():
        if key not in out:
            continue
        if isinstance(out[key], bool) or not isinstance(out[key], types):
            raise ParameterError(f"{source}: [distill] {key} must be {' or '.join(t.__name__ for t in types)}")
    if not 0 <= out["alpha"] <= 1 or out["temperature"] <= 0 or out["folds"] < 2:
        raise ParameterError(f"{source}: [distill] needs 0 <= alpha <= 1, temperature > 0 and folds >= 2")
    return out


def _check(r: dict, source: str) -> None:
    if not isinstance(r["name"], str) or not r["name"]:
        raise ParameterError(f"{source}: 'name' must be a non-empty string")
    if isinstance(r["seed"], bool) or not isinstance(r["seed"], int):
        raise ParameterError(f"{source}: 'seed' must be an integer")
    for (section, key), types in _TYPES.items():
        value = r[section].get(key)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise ParameterError(f"{source}: [{section}] {key} must be {names}, got {value!r}")
    corpora = r["data"]["corpora"]
    bad = [c for c in corpora if c not in ALL_CORPORA]
    if not corpora or bad:
        raise ParameterError(f"{source}: [data] corpora must be a non-empty subset of {list(ALL_CORPORA)}, got {corpora}")
    if r["data"]["view"] not in VIEWS:
        raise ParameterError(f"{source}: [data] view must be one of {list(VIEWS)}, got {r['data']['view']!r}")
    kind, arch = r["model"]["kind"], r["model"]["arch"]
    archs = {"classical": CLASSICAL_ARCHS, "neural": NEURAL_ARCHS, "whisper": WHISPER_ARCHS}
    if kind not in archs:
        raise ParameterError(f"{source}: [model] kind must be one of {', '.join(archs)}, got {kind!r}")
    if arch not in archs[kind]:
        raise ParameterError(f"{source}: [model] arch of a {kind} model must be one of {list(archs[kind])}, got {arch!r}")
    if kind == "classical":
        if arch == "mlp" and r["model"]["class_weight"] is not None:
            raise ParameterError(f"{source}: [model] class_weight is not supported by the MLP; use smote = true")
        for param, values in r["search"]["grid"].items():
            if not isinstance(values, list) or not values:
                raise ParameterError(f"{source}: [search] grid.{param} must be a non-empty list")
        if r["search"]["folds"] < 2:
            raise ParameterError(f"{source}: [search] folds must be at least 2")
    for key in ("epochs", "batch_size", "patience"):
        if r["train"][key] < (0 if key == "patience" else 1):
            raise ParameterError(f"{source}: [train] {key} must be positive, got {r['train'][key]}")
    if r["train"]["lr"] <= 0 or r["train"]["window_seconds"] <= 0:
        raise ParameterError(f"{source}: [train] lr and window_seconds must be positive")
