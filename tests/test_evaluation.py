"""Recipes, metrics, protocols and the HTML report of emovox.evaluation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from emovox.corpora import Item
from emovox.errors import DataError, ParameterError
from emovox.evaluation.metrics import classification_metrics, roc_auc, summarize_folds
from emovox.evaluation.protocols import (
    Fold,
    build_protocol,
    carve_validation,
    check_fold,
    map_items,
    protocol_key,
    validation_protocol,
)
from emovox.evaluation.recipe import find_recipe, load_recipe, validate_recipe

REPO = Path(__file__).resolve().parents[1]


# -- recipes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["source_mlp", "egemaps_logreg", "egemaps_logreg_smote", "egemaps_svm", "handcrafted_rf"])
def test_shipped_classical_recipes_load(name):
    r = load_recipe(REPO / "recipes" / f"{name}.toml")
    assert r["name"] == name
    assert r["model"]["kind"] == "classical"
    assert r["train"]["epochs"] == 30  # defaults filled in
    assert r["features"]["set"] in ("handcrafted", "egemaps", "handcrafted_full")


def test_source_mlp_is_the_source_projects_model():
    r = load_recipe(REPO / "recipes" / "source_mlp.toml")
    p = r["model"]["params"]
    assert (p["activation"], p["alpha"], p["hidden_layer_sizes"]) == ("tanh", 0.05, [150])
    assert r["features"]["set"] == "handcrafted" and not r["search"]["grid"]


def test_recipe_defaults_and_neural_kind_inferred():
    r = validate_recipe({"name": "n", "model": {"arch": "crnn"}})
    assert r["model"]["kind"] == "neural"
    assert r["data"]["view"] == "7class" and r["seed"] == 0


def test_distill_section_is_optional_and_completed():
    assert "distill" not in validate_recipe({"name": "x", "model": {"arch": "crnn"}})
    r = validate_recipe({"name": "x", "model": {"arch": "crnn"}, "distill": {"alpha": 0.3}})
    assert r["distill"] == {"teacher": "egemaps_logreg", "alpha": 0.3, "temperature": 2.0, "folds": 5}


@pytest.mark.parametrize("raw, match", [
    ({"name": "x", "bogus": 1}, "unknown section"),
    ({"name": "x", "model": {"arch": "mlp", "layers": 3}}, "unknown key"),
    ({"name": "x", "model": {"kind": "classical", "arch": "crnn"}}, "arch"),
    ({"name": "x", "data": {"view": "9class"}}, "view"),
    ({"name": "x", "data": {"corpora": ["timit"]}}, "corpora"),
    ({"name": "x", "model": {"arch": "mlp", "class_weight": "balanced"}}, "class_weight"),
    ({"name": "x", "search": {"grid": {"C": 1.0}}}, "non-empty list"),
    ({"name": "x", "seed": "0"}, "seed"),
    ({"name": "x", "model": {"arch": "logreg", "smote": "yes"}}, "smote"),
    ({"name": "x", "distill": {"teacher": "egemaps_logreg", "alpha": 2.0}}, "alpha"),
    ({"name": "x", "distill": {"tutor": "egemaps_logreg"}}, "unknown key"),
    ({"name": "x", "train": {"samples": "many"}}, "samples"),
])
def test_recipe_errors_are_parameter_errors(raw, match):
    with pytest.raises(ParameterError, match=match):
        validate_recipe(raw)


def test_recipe_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    with pytest.raises(DataError, match="TOML"):
        load_recipe(bad)
    with pytest.raises(ParameterError, match="not found"):
        find_recipe("no_such_recipe_xyz")


# -- metrics ---------------------------------------------------------------------------------------
def test_metrics_match_scikit_learn():
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

    rng = np.random.default_rng(0)
    labels = ["angry", "happy", "neutral", "sad"]
    y_true = list(rng.choice(labels, 300, p=[0.4, 0.3, 0.2, 0.1]))
    proba = rng.dirichlet(np.ones(4), size=300)
    proba[np.arange(300), [labels.index(t) for t in y_true]] += 0.3
    y_pred = [labels[k] for k in proba.argmax(axis=1)]
    m = classification_metrics(y_true, y_pred, labels=labels, proba=proba,
                               speakers=[f"s{i % 5}" for i in range(300)], genders=["female", "male", None] * 100)
    assert m["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["ua"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    for k, lab in enumerate(labels):
        assert m["roc"][lab]["auc"] == pytest.approx(roc_auc_score(np.array(y_true) == lab, proba[:, k]))
    assert sum(map(sum, m["confusion"])) == 300
    assert set(m["per_speaker"]) == {f"s{i}" for i in range(5)}
    assert set(m["per_gender"]) == {"female", "male", "unknown"}
    assert sum(v["n"] for v in m["per_gender"].values()) == 300


def test_ua_ignores_classes_absent_from_the_test_set():
    m = classification_metrics(["a", "a", "b"], ["a", "c", "b"], labels=["a", "b", "c"])
    assert m["ua"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["per_class"]["c"]["support"] == 0


def test_group_ua_counts_predictions_outside_the_groups_classes():
    # speaker s1 says only "a" but is heard once as "b": its UA is 0.5, not 1.0
    m = classification_metrics(["a", "a", "b"], ["a", "b", "b"], labels=["a", "b"], speakers=["s1", "s1", "s2"])
    assert m["per_speaker"]["s1"] == {"n": 2, "wa": 0.5, "ua": 0.5}
    assert m["per_speaker"]["s2"] == {"n": 1, "wa": 1.0, "ua": 1.0}


def test_model_card_scores_are_the_metrics_modules():
    from emovox.evaluation.model_card import _ua_wa

    truth, preds = ["a", "a", "b", "b", "b"], ["a", "c", "b", "b", "a"]
    assert _ua_wa(truth, preds) == {"ua": round((0.5 + 2 / 3) / 2, 4), "wa": 0.6, "n": 5}

def test_roc_auc_ties_and_degenerate():
    assert roc_auc(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_metric_input_errors():
    with pytest.raises(ParameterError):
        classification_metrics(["a"], ["a", "b"], labels=["a", "b"])
    with pytest.raises(ParameterError):
        classification_metrics([], [], labels=["a"])
    with pytest.raises(ParameterError, match="shape"):
        classification_metrics(["a"], ["a"], labels=["a", "b"], proba=np.ones((1, 3)))


def test_summarize_folds_mean_and_sample_std():
    s = summarize_folds([{"ua": 0.3, "wa": 0.4, "macro_f1": 0.2}, {"ua": 0.5, "wa": 0.4, "macro_f1": 0.2},
                         {"ua": 0.4, "wa": 0.4, "macro_f1": 0.2}])
    assert s["ua"]["mean"] == pytest.approx(0.4) and s["ua"]["std"] == pytest.approx(0.1)
    assert s["wa"]["std"] == 0 and s["ua"]["n_folds"] == 3


# -- protocols on synthetic items --------------------------------------------------------------------
def _items(n_speakers=8, per_label=3, labels=("neutral", "calm", "happy", "sad"), corpus="synth"):
    return [Item(f"/x/{corpus}{s}_{lab}{k}.wav", lab, f"{corpus}:{s}", corpus, gender="female" if s % 2 else "male")
            for s in range(n_speakers) for lab in labels for k in range(per_label)]


def test_protocol_keys():
    assert protocol_key(1) == "ravdess-6fold" and protocol_key("3") == "loco"
    assert protocol_key("crema-d-5fold") == "crema-d-5fold" and protocol_key("1+") == "ravdess-6fold-plus"
    with pytest.raises(ParameterError):
        protocol_key("7")


def test_map_items_applies_the_view():
    mapped = map_items(_items(labels=("calm", "surprised")), "6class")
    assert {it.label for it in mapped} == {"neutral"}  # calm -> neutral; surprised dropped


def test_validation_is_carved_from_train_speakers_only():
    items = _items()
    train = [i for i, it in enumerate(items) if it.speaker != "synth:0"]
    val = carve_validation(items, train, fraction=0.3, seed=1)
    assert val and set(val) <= set(train)
    val_speakers = {items[i].speaker for i in val}
    assert all(it.speaker not in val_speakers for i, it in enumerate(items) if i in set(train) - set(val))
    assert carve_validation(items, train, fraction=0.3, seed=1) == val  # seeded


def test_check_fold_catches_leaks():
    items = _items(n_speakers=3)
    leak = Fold("leak", (0, 1, 2), (3, 4), (0,), ("neutral",))  # speaker synth:0 on both sides
    with pytest.raises(DataError, match="both"):
        check_fold(items, leak)
    outside = Fold("v", (12, 13), (0,), (30,), ("neutral",))
    with pytest.raises(DataError, match="validation"):
        check_fold(items, outside)


def test_validation_protocol_holds_out_whole_speakers():
    data = validation_protocol(_items(n_speakers=10), view="7class", seed=0)
    fold = data.folds[0]
    assert not {data.items[i].speaker for i in fold.train} & {data.items[i].speaker for i in fold.test}
    assert fold.test == fold.val and "calm" not in fold.labels  # 7-class view merges calm into neutral


# -- protocols on the corpora --------------------------------------------------------------------------
@pytest.mark.corpus
@pytest.mark.parametrize("number, n_folds, n_labels", [(1, 6, 8), (2, 5, 6), (3, 4, None)])
def test_speaker_independent_protocols_have_no_shared_speaker(corpus_root, number, n_folds, n_labels):
    data = build_protocol(number, corpus_root)
    assert len(data.folds) == n_folds and data.speaker_independent
    tested = set()
    for fold in data.folds:
        check_fold(data.items, fold)
        train_spk = {data.items[i].speaker for i in fold.train}
        test_spk = {data.items[i].speaker for i in fold.test}
        assert not train_spk & test_spk
        assert {data.items[i].speaker for i in fold.val} <= train_spk
        if n_labels:
            assert len(fold.labels) == n_labels
        tested |= set(fold.test)
    if number != 3:
        assert tested == set(range(len(data.items)))  # every clip tested exactly once over the folds


@pytest.mark.corpus
def test_loco_restricts_labels_to_the_held_out_corpus(corpus_root):
    data = build_protocol(3, corpus_root)
    by_name = {f.name: f for f in data.folds}
    crema = by_name["heldout-crema-d"]
    assert "surprised" not in crema.labels and len(crema.labels) == 6
    assert {data.items[i].label for i in crema.train} <= set(crema.labels)
    assert {data.items[i].corpus for i in crema.train} == {"ravdess", "tess", "savee"}
    assert all(data.items[i].label != "calm" for i in range(len(data.items)))
    assert len(by_name["heldout-ravdess"].labels) == 7


@pytest.mark.corpus
def test_protocol_1_plus_keeps_protocol_1s_tests_and_adds_the_other_corpora_to_training(corpus_root):
    p1, plus = build_protocol(1, corpus_root), build_protocol("1+", corpus_root)
    assert [f.name for f in plus.folds] == [f.name for f in p1.folds] and plus.number == "1+"
    for a, b in zip(p1.folds, plus.folds, strict=True):
        check_fold(plus.items, b)
        assert [p1.items[i].path for i in a.test] == [plus.items[i].path for i in b.test]
        assert b.labels == a.labels and len(b.labels) == 8
        train = [plus.items[i] for i in b.train]
        assert {it.corpus for it in train} == {"ravdess", "tess", "savee", "crema-d"}
        assert {it.label for it in train} <= set(b.labels)
        assert sum(it.corpus == "ravdess" for it in train) == len(a.train)


@pytest.mark.corpus
def test_random_protocol_leaks_speakers(corpus_root):
    data = build_protocol(4, corpus_root)
    fold = data.folds[0]
    assert not data.speaker_independent
    assert {data.items[i].speaker for i in fold.train} & {data.items[i].speaker for i in fold.test}
    assert len(fold.test) == 288


# -- report --------------------------------------------------------------------------------------------
def test_report_is_self_contained(tmp_path):
    from emovox.evaluation.report import write_run

    rng = np.random.default_rng(0)
    labels = ["angry", "happy", "sad"]
    y = list(rng.choice(labels, 60))
    proba = rng.dirichlet(np.ones(3), 60)
    pred = [labels[k] for k in proba.argmax(1)]
    spk = [f"s{i % 4}" for i in range(60)]
    m = classification_metrics(y, pred, labels=labels, proba=proba, speakers=spk, genders=["female"] * 60)
    fold = {"name": "fold1", "labels": labels, "n_train": 100, "n_val": 10, "n_test": 60, "train_seconds": 1.0,
            "infer_ms_per_clip": 0.1, "search": {}, "metrics": m}
    result = {"recipe": "r", "protocol": "ravdess-6fold", "protocol_number": "1", "title": "t", "view": "8class",
              "speaker_independent": True, "quick": False, "summary": summarize_folds([m]), "model_bytes": 1234,
              "train_seconds": 1.0, "infer_ms_per_clip": 0.1, "folds": [fold], "pooled": m, "finished": "now"}
    rows = [{"fold": "fold1", "path": f"{i}.wav", "true": t, "pred": p} for i, (t, p) in enumerate(zip(y, pred, strict=True))]
    hist = {"fold1": [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "val_ua": 0.3},
                      {"epoch": 2, "train_loss": 0.8, "val_loss": 1.0, "val_ua": 0.4}]}
    page = write_run(tmp_path / "run", result, recipe={"name": "r", "seed": 3}, rows=rows, histories=hist, command="emovox x")
    text = page.read_text()
    for name in ("config.json", "run.json", "metrics.json", "predictions.csv", "confusion.png", "roc.png",
                 "per_speaker.png", "per_gender.png", "curves.png"):
        assert (tmp_path / "run" / name).is_file(), name
    assert not (tmp_path / "run" / "folds.png").exists()  # one fold: no per-fold chart
    assert text.count("data:image/png;base64,") == 5 and "± " not in text.split("<h2>")[0]
    assert not re.search(r'src="(?!data:)', text) and "<link" not in text  # nothing to fetch
    assert json.loads((tmp_path / "run" / "run.json").read_text())["seed"] == 3
    assert "numpy" in json.loads((tmp_path / "run" / "run.json").read_text())["versions"]


def test_speaker_normalisation_is_per_group_and_optional_in_recipes():
    from emovox.evaluation.runner import recipe_hash
    from emovox.features.normalise import standardise_by_group

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(5, 2, (6, 3)), rng.normal(-3, 0.5, (4, 3))])
    groups = ["a"] * 6 + ["b"] * 4
    Z = standardise_by_group(X, groups)
    for g, rows in (("a", slice(0, 6)), ("b", slice(6, 10))):
        assert np.allclose(Z[rows].mean(axis=0), 0) and np.allclose(Z[rows].std(axis=0), 1), g
    # weights: a zero leaves a row out of its group's statistics but still standardises it
    w = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 1], dtype=float)
    Zw = standardise_by_group(X, groups, weights=w)
    assert np.allclose(Zw[:5].mean(axis=0), 0) and np.isfinite(Zw[5]).all()
    with pytest.raises(ParameterError, match="one group per row"):
        standardise_by_group(X, groups[:3])
    base = {"name": "t", "model": {"arch": "logreg"}, "features": {"set": "whisper_base_l3"}}
    plain = validate_recipe(base)
    assert "normalise" not in plain["features"]  # recipes without it keep their hash
    spk = validate_recipe({**base, "features": {"set": "whisper_base_l3", "normalise": "speaker"}})
    assert recipe_hash(spk) != recipe_hash(plain)
    with pytest.raises(ParameterError, match="normalise must be one of"):
        validate_recipe({**base, "features": {"set": "whisper_base_l3", "normalise": "corpus"}})


def test_train_ships_speaker_normalisation_only_on_an_encoder_graph(tmp_path):
    from emovox.evaluation.runner import train_model

    # the torch statistics are not what the shipped ONNX graph computes: refused before anything is written
    recipe = validate_recipe({"name": "t", "model": {"arch": "logreg"},
                              "features": {"set": "whisper_base_l3", "normalise": "speaker"}})
    with pytest.raises(ParameterError, match="for protocol evaluation only"):
        train_model(recipe, [], tmp_path / "m")
    assert not (tmp_path / "m").exists()
