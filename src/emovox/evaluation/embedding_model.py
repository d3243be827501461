"""Train a speaker-normalised embedding model (kind ``whisper_embed``) from a recipe: the shipped default.

A recipe with ``[features] set = "whisper_<encoder>_l<k>_int8"`` (the shipped encoder's own int8
graph) and ``normalise = "neutral"`` becomes a model directory with two heads over that embedding
(:mod:`emovox.models.whisper_embed`): the ``speaker`` head on embeddings relative to their speaker's
neutral clips and the ``global`` head on raw ones, each a scaler + logistic regression with the
recipe's ``[search]`` grid tuned on speaker-grouped folds, and each calibrated by a temperature
fitted on the same folds' out-of-fold predictions (training speakers only).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ..features.registry import ONNX_ATOMS

__all__ = ["EMBEDDING_SETS", "is_embedding_recipe", "fit_calibrated_head", "write_embedding_model",
           "augmented_features", "AUGMENT_SEED"]

#: Seed of the one augmented copy of each training clip.
AUGMENT_SEED = 1

#: Feature sets that are a shippable encoder graph -> (encoder, blocks): the registry's ONNX sets.
EMBEDDING_SETS = {name: (encoder, blocks) for name, (encoder, blocks, _) in ONNX_ATOMS.items()}


def is_embedding_recipe(recipe: dict) -> bool:
    """Whether ``emovox train`` writes a ``whisper_embed`` directory for ``recipe``; ParameterError if it cannot."""
    features = recipe.get("features", {})
    if features.get("normalise") == "speaker":
        raise ParameterError(
            f"recipe {recipe['name']}: normalise = \"speaker\" (all of a speaker's clips as the reference) is "
            "for protocol evaluation only: on a real call, where one emotion dominates, it pulls that emotion "
            "to the middle (docs/experiments.md); ship normalise = \"neutral\"")
    if features.get("normalise") != "neutral":
        return False
    if features.get("set") not in EMBEDDING_SETS or recipe["model"].get("arch") != "logreg":
        raise ParameterError(
            f"recipe {recipe['name']}: a neutral-referenced model ships only as logistic regression on an "
            f"encoder graph's embedding ([features] set one of {', '.join(EMBEDDING_SETS)}); "
            f"got set {features.get('set')!r}, arch {recipe['model'].get('arch')!r}")
    return True


def augmented_features(items, recipe: dict, *, seed: int = AUGMENT_SEED, progress: bool = True) -> np.ndarray:
    """The recipe's feature set on one augmented copy of each item (the recipe's ``[augment]``).

    Which augmentations fire is drawn once per speaker (one channel per speaker, as in a call, so a
    speaker's neutral reference is taken within that channel); their strengths per clip. Both draws
    are seeded by (``seed``, speaker or clip), so a rerun computes the same copy, and the encoder's
    embedding cache (keyed by the samples) makes it cheap.
    """
    import hashlib

    from .._progress import progress as bar
    from ..audio import load
    from ..audio.augment import Augmenter
    from ..features import extract

    aug = Augmenter(recipe["augment"])
    rows = []
    for it in bar(items, total=len(items), desc=f"{recipe['features']['set']} augmented", enabled=None if progress else False):
        y = load(it.path)
        spk = int(hashlib.sha1(str(it.speaker).encode()).hexdigest()[:12], 16)
        clip = int(hashlib.sha1(np.ascontiguousarray(y, np.float32).tobytes()).hexdigest()[:12], 16)
        plan = aug.plan(np.random.default_rng([seed, spk]))
        rows.append(extract(aug.apply(y, np.random.default_rng([seed, clip]), plan=plan),
                            set=recipe["features"]["set"]))
    return np.stack(rows)


def with_augmented(X: np.ndarray, XA: np.ndarray | None, y: Sequence[str],
                   speakers: Sequence[str]) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """Training rows plus their augmented copies: ``(X, y, speakers, reference_groups)``.

    ``speakers`` keeps each copy's real speaker, so speaker-grouped folds never split a speaker's
    clean and augmented clips; ``reference_groups`` makes a speaker's augmented copy a group of its
    own (``<speaker>#aug``: one channel), the unit of the neutral reference.
    """
    if XA is None:
        return X, list(y), list(speakers), list(speakers)
    return (np.concatenate([X, XA]), [*y, *y], [*speakers, *speakers],
            [*speakers, *(f"{s}#aug" for s in speakers)])


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``y`` (class indices), on a log grid."""
    best, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 61)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        nll = float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def fit_calibrated_head(recipe: dict, X: np.ndarray, y: Sequence[str], speakers: Sequence[str],
                        labels: Sequence[str]) -> tuple[dict[str, np.ndarray], dict]:
    """One head: the recipe's search on speaker-grouped folds, then a temperature from out-of-fold logits.

    Returns the head's arrays (``mean``, ``scale``, ``coef``, ``intercept``, classes in ``labels``
    order) and a record (search results, temperature, out-of-fold UA).
    """
    from sklearn.base import clone
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    from ..models.classical import fit_classical

    target = np.asarray(y)
    model, search = fit_classical(recipe, X, target, groups=speakers)
    scaler, clf = model.named_steps["scale"], model.named_steps["clf"]
    order = [list(clf.classes_).index(lab) for lab in labels]
    head = {"mean": scaler.mean_.astype(np.float32), "scale": scaler.scale_.astype(np.float32),
            "coef": clf.coef_[order].astype(np.float32), "intercept": clf.intercept_[order].astype(np.float32)}
    n_splits = min(int(recipe["search"].get("folds", 3)), len(set(speakers)))
    oof = np.zeros((len(target), len(labels)))
    for train, test in GroupKFold(n_splits=n_splits).split(X, target, groups=np.asarray(speakers)):
        fold = clone(model).fit(X[train], target[train])
        cols = [list(fold.classes_).index(lab) for lab in labels]
        oof[test] = fold.decision_function(X[test])[:, cols]
    truth = np.array([list(labels).index(v) for v in target])
    record = {"search": search, "temperature": _temperature(oof, truth),
              "oof_ua": round(float(balanced_accuracy_score(truth, oof.argmax(axis=1))), 4), "n_splits": n_splits}
    return head, record


def write_embedding_model(recipe: dict, items, out: Path, *, metrics: dict, training: dict,
                          progress: bool = True) -> dict:
    """Fit both heads on all ``items`` and write the model directory; returns the heads' records."""
    from ..features import extract_many
    from ..features.normalise import NEUTRAL_ITERATIONS, NEUTRAL_MIN_WEIGHT, neutral_means_by_group
    from ..labels import VIEWS
    from ..models.whisper_embed import export_model_dir

    encoder, n_blocks = EMBEDDING_SETS[recipe["features"]["set"]]
    X = extract_many(items, set=recipe["features"]["set"], progress=progress)
    XA = augmented_features(items, recipe, progress=progress) if recipe.get("augment") else None
    X, y, speakers, reference_groups = with_augmented(X, XA, [it.label for it in items],
                                                      [it.speaker for it in items])
    labels = [lab for lab in VIEWS[recipe["data"]["view"]].classes if lab in set(y)]
    heads: dict[str, np.ndarray] = {}
    records = {}
    for name, Z in (("global", X), ("speaker", neutral_means_by_group(X, reference_groups, y))):
        head, records[name] = fit_calibrated_head(recipe, Z, y, speakers, labels)
        heads |= {f"{name}_{k}": v for k, v in head.items()}
    export_model_dir(out, encoder=encoder, n_blocks=n_blocks, heads=heads, labels=labels, name=recipe["name"],
                     version=training.get("version", "0"),
                     temperature={k: r["temperature"] for k, r in records.items()},
                     min_weight=NEUTRAL_MIN_WEIGHT, iterations=NEUTRAL_ITERATIONS, window_seconds=4.0,
                     hop_seconds=2.0,
                     metrics=metrics, training={**training, "heads": records, "n_clips": len(items),
                                                "n_speakers": len({it.speaker for it in items}),
                                                "augmented_copies": int(XA is not None),
                                                "augment": recipe.get("augment", {})})
    return records
