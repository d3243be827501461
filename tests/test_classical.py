"""Classical pipelines: construction, grouped grid search, SMOTE, save/load and ONNX export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.errors import ModelError, ParameterError
from emovox.evaluation.recipe import validate_recipe
from emovox.models.classical import fit_classical, load_classical, make_classical, save_classical


def _recipe(arch="logreg", **model):
    return validate_recipe({"name": f"t_{arch}", "seed": 0, "model": {"arch": arch, **model},
                            "features": {"set": "logmel_stats"}})


def _blobs(n_per=30, d=6, classes=("angry", "happy", "sad"), seed=0, speakers=6):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(2.0 * k, 1.0, size=(n_per, d)) for k in range(len(classes))])
    y = np.repeat(classes, n_per)
    groups = np.array([f"spk{i % speakers}" for i in range(len(y))])
    return X, y, groups


@pytest.mark.parametrize("arch", ["mlp", "svm", "logreg", "rf"])
def test_each_arch_fits_and_predicts(arch):
    X, y, g = _blobs()
    pipe, search = fit_classical(_recipe(arch), X, y, groups=g)
    assert search == {}
    assert list(pipe.classes_) == ["angry", "happy", "sad"]
    p = pipe.predict_proba(X)
    assert p.shape == (90, 3) and np.allclose(p.sum(1), 1)
    assert (pipe.predict(X) == y).mean() > 0.9


def test_source_mlp_defaults():
    clf = make_classical(_recipe("mlp")).named_steps["clf"]
    assert (clf.activation, clf.alpha, clf.hidden_layer_sizes) == ("tanh", 0.05, (150,))
    clf = make_classical(_recipe("mlp", params={"hidden_layer_sizes": [20, 10]})).named_steps["clf"]
    assert clf.hidden_layer_sizes == (20, 10)


def test_class_weight_reaches_the_classifier():
    pipe = make_classical(_recipe("svm", class_weight="balanced"))
    assert pipe.named_steps["clf"].estimator.class_weight == "balanced"
    pipe = make_classical(_recipe("logreg", class_weight="balanced"))
    assert pipe.named_steps["clf"].class_weight == "balanced"


def test_smote_balances_only_the_training_data():
    from imblearn.pipeline import Pipeline as ImbPipeline

    pipe = make_classical(_recipe("logreg", smote=True))
    assert isinstance(pipe, ImbPipeline) and [n for n, _ in pipe.steps] == ["scale", "smote", "clf"]
    X, y, g = _blobs()
    keep = np.r_[0:30, 30:60, 60:66]  # "sad" rare: 6 of 66
    pipe.fit(X[keep], y[keep])
    assert pipe.predict(X[:5]).shape == (5,)  # SMOTE is skipped at predict time


def test_grid_search_uses_speaker_grouped_folds(monkeypatch):
    import sklearn.model_selection as ms

    seen = []
    original = ms.GroupKFold.split

    def spy(self, X, y=None, groups=None):
        for train, test in original(self, X, y, groups):
            seen.append((set(groups[train]), set(groups[test])))
            yield train, test

    monkeypatch.setattr(ms.GroupKFold, "split", spy)
    X, y, g = _blobs(speakers=6)
    recipe = validate_recipe({"name": "g", "model": {"arch": "logreg"}, "search": {"grid": {"C": [0.1, 1.0]}, "folds": 3}})
    pipe, search = fit_classical(recipe, X, y, groups=g)
    assert search["n_splits"] == 3 and set(search["best_params"]) == {"clf__C"}
    assert len(search["results"]) == 2
    assert seen and all(not (tr & te) for tr, te in seen)  # no speaker on both sides of an inner fold


def test_grid_search_without_groups_is_skipped():
    X, y, _ = _blobs()
    recipe = validate_recipe({"name": "g", "model": {"arch": "logreg"}, "search": {"grid": {"C": [0.1, 1.0]}}})
    with pytest.warns(UserWarning, match="skipped"):
        _, search = fit_classical(recipe, X, y, groups=None)
    assert "skipped" in search


def test_nan_features_are_refused():
    X, y, g = _blobs()
    X[0, 0] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        fit_classical(_recipe(), X, y, groups=g)


@pytest.mark.parametrize("arch", ["logreg", "svm", "mlp", "rf"])
def test_save_load_roundtrip_and_onnx(tmp_path, arch):
    import onnxruntime as ort

    X, y, g = _blobs()
    recipe = _recipe(arch, smote=True)
    pipe, _ = fit_classical(recipe, X, y, groups=g)
    out = save_classical(pipe, tmp_path / "m", recipe=recipe, n_features=X.shape[1], metrics={"ua": 1.0})
    meta = json.loads((out / "model.json").read_text())
    assert meta["kind"] == "classical" and meta["labels"] == ["angry", "happy", "sad"]
    assert meta["features"] == {"set": "logmel_stats", "dim": 6}
    loaded, meta2 = load_classical(out)
    assert np.allclose(loaded.predict_proba(X), pipe.predict_proba(X))
    assert "error" not in meta["onnx"], meta["onnx"]
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_p = sess.run(["probabilities"], {"X": X.astype(np.float32)})[0]
    assert np.allclose(onnx_p, pipe.predict_proba(X), atol=1e-3)
    assert not list(out.glob("*.tmp"))


def test_corrupt_model_is_a_model_error(tmp_path):
    X, y, g = _blobs()
    recipe = _recipe()
    pipe, _ = fit_classical(recipe, X, y, groups=g)
    out = save_classical(pipe, tmp_path / "m", recipe=recipe, n_features=X.shape[1], onnx=False)
    (out / "model.joblib").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="SHA-256"):
        load_classical(out)
    with pytest.raises(ModelError):
        load_classical(tmp_path / "nowhere")


def test_cross_fitted_teacher_never_sees_the_speaker_it_predicts():
    """Each clip's soft target comes from a teacher fitted without that clip's speaker."""
    from emovox.evaluation.recipe import validate_recipe
    from emovox.models.distill import cross_fitted_proba

    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{i}" for i in range(6)], 20)
    y = np.tile(["a", "b"], 60)
    X = rng.standard_normal((120, 4)) + (y == "a")[:, None] * 2.0
    X[speakers == "s0", 0] += 100.0  # speaker s0 is an outlier that only a leaky teacher could learn
    teacher = validate_recipe({"name": "teacher", "model": {"kind": "classical", "arch": "logreg"}, "features": {"set": "egemaps"}})
    p = cross_fitted_proba(teacher, X, y, speakers, ["b", "a", "c"], folds=3)
    assert p.shape == (120, 3) and np.allclose(p.sum(1), 1) and np.allclose(p[:, 2], 0)
    assert (p[:, 1] > 0.5).mean() > 0.8 * (y == "a").mean()
