"""NeuralClassifier on synthetic tone bursts: fit, predict, save -> ONNX, resume, seeds, clone."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emovox.errors import ModelError, ParameterError  # noqa: E402
from emovox.features.windows import fit_length, trim_silence, window_starts, windows  # noqa: E402
from emovox.models import NeuralClassifier  # noqa: E402
from emovox.models import _training as T  # noqa: E402
from emovox.models.architectures import ARCHS, ModelDims, build_model, count_flops  # noqa: E402

SR = 16000
TINY = {"width": 4, "hidden": 8, "batch_size": 8, "threads": 1}


def _bursts(freq: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A tone switched on and off every 100 ms, plus a little noise: one 'class' per pitch."""
    t = np.arange(int(seconds * SR)) / SR
    gate = (np.floor(t / 0.1) % 2 == 0).astype(float)
    y = 0.3 * gate * np.sin(2 * np.pi * freq * t) + 0.003 * rng.standard_normal(len(t))
    return y.astype(np.float32)


def _data(n_per_class: int = 10, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    waves, labels = [], []
    for label, freq in (("low", 250.0), ("mid", 900.0), ("high", 3000.0)):
        for _ in range(n_per_class):
            waves.append(_bursts(freq * rng.uniform(0.95, 1.05), rng.uniform(1.0, 2.0), rng))
            labels.append(label)
    return waves, labels


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def fitted(data):
    waves, labels = data
    return NeuralClassifier(epochs=4, lr=5e-3, **TINY).fit(waves, labels)


def test_predict_proba_shape_and_rows_sum_to_one(fitted, data):
    waves, _ = data
    p = fitted.predict_proba(waves[:5])
    assert p.shape == (5, 3)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert set(fitted.predict(waves[:5])) <= set(fitted.classes_)
    assert [h["epoch"] for h in fitted.history_] == [1, 2, 3, 4]
    assert fitted.temperature_ > 0


def test_learns_tone_classes(fitted, data):
    waves, labels = data
    assert fitted.score(waves, labels) > 0.6


def test_save_onnx_matches_torch(fitted, data, tmp_path):
    from emovox.models.onnx_export import onnx_logits

    fitted.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["labels"] == list(fitted.classes_)
    assert set(meta["sha256"]) == {"model.onnx", "model.int8.onnx", "weights.pt"}
    x = fitted._windows(data[0][0])
    with torch.no_grad():
        ref = fitted.model_(torch.from_numpy(x)).numpy()
    assert np.abs(onnx_logits(tmp_path / "model.onnx", x) - ref).max() < 1e-4
    again = NeuralClassifier.load(tmp_path)
    assert np.allclose(again.predict_proba(data[0][:3]), fitted.predict_proba(data[0][:3]), atol=1e-6)


def test_same_seed_same_result(data):
    waves, labels = data
    a = NeuralClassifier(epochs=1, seed=3, **TINY).fit(waves, labels)
    b = NeuralClassifier(epochs=1, seed=3, **TINY).fit(waves, labels)
    assert np.array_equal(a.decision_function(waves[:4]), b.decision_function(waves[:4]))


def test_checkpoint_resume_gives_the_uninterrupted_result(data, tmp_path, monkeypatch):
    waves, labels = data
    kwargs = {"epochs": 2, "seed": 1, "checkpoint_dir": str(tmp_path), **TINY}
    whole = NeuralClassifier(**{**kwargs, "checkpoint_dir": None}).fit(waves, labels)

    original = T.TrainLoop._save_checkpoint

    def crash_after_first(self, epoch):
        original(self, epoch)
        raise KeyboardInterrupt  # the process dies right after epoch 1 was checkpointed

    monkeypatch.setattr(T.TrainLoop, "_save_checkpoint", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        NeuralClassifier(**kwargs).fit(waves, labels)
    monkeypatch.setattr(T.TrainLoop, "_save_checkpoint", original)
    resumed = NeuralClassifier(**kwargs).fit(waves, labels)
    assert [h["epoch"] for h in resumed.history_] == [1, 2]
    assert np.allclose(resumed.decision_function(waves[:4]), whole.decision_function(waves[:4]), atol=1e-5)


def test_sklearn_clone_keeps_all_params():
    from sklearn.base import clone

    est = NeuralClassifier(arch="cnn1d", epochs=2, width=8, dropout=0.1)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert twin.get_params()["width"] == 8
    assert not hasattr(twin, "model_")


def test_from_recipe():
    recipe = {"name": "x", "seed": 4, "model": {"kind": "neural", "arch": "lstm", "params": {"hidden": 32}},
              "train": {"epochs": 3, "batch_size": 16}, "augment": {"gain": {"p": 0.5}}}
    est = NeuralClassifier.from_recipe(recipe)
    assert (est.arch, est.seed, est.epochs, est.hidden, est.augment) == ("lstm", 4, 3, 32, {"gain": {"p": 0.5}})
    with pytest.raises(ParameterError):
        NeuralClassifier.from_recipe({"model": {"kind": "classical"}})


def test_errors(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NeuralClassifier().predict([np.zeros(16000, np.float32)])
    with pytest.raises(ModelError):
        NeuralClassifier.load(tmp_path)
    with pytest.raises(ParameterError):
        NeuralClassifier().fit([np.zeros(16000, np.float32)], [])


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_architectures_take_any_length(arch):
    model = build_model(ModelDims(arch=arch, n_classes=5, width=8, hidden=16)).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 64, 301)).shape == (2, 5)
        assert model(torch.randn(1, 64, 120)).shape == (1, 5)
    assert count_flops(model) > 0


def test_default_crnn_budget():
    model = build_model(ModelDims())
    assert count_flops(model) <= 600e6  # per 3 s window


def test_windows_cover_the_clip():
    assert window_starts(301, window=301, hop=150) == [0]
    assert window_starts(700, window=300, hop=150) == [0, 150, 300, 400]
    x = np.arange(50, dtype=np.float32)[None].repeat(64, 0)
    assert np.array_equal(fit_length(x, 120)[0, 50:100], x[0])
    assert windows(x, window=120, hop=60).shape == (1, 64, 120)


def test_trim_silence_cuts_quiet_edges():
    y = np.zeros(48000, np.float32)
    y[16000:32000] = 0.5 * np.sin(np.arange(16000) / 5)
    out = trim_silence(y, margin=0)
    assert 16000 <= len(out) <= 16000 + 800


def test_sample_budget_sets_the_epochs(data):
    waves, labels = data
    est = NeuralClassifier(epochs=10, samples=50, **TINY).fit(waves, labels)  # 27 training clips -> 2 epochs
    assert len(est.history_) == est.epochs_for(27) == 2


def test_distillation_follows_the_teacher(data):
    """With alpha = 1 the labels are ignored: a teacher that swaps two classes is what is learned."""
    waves, labels = data
    classes = sorted(set(labels))
    swap = {"low": "mid", "mid": "low", "high": "high"}
    teacher = np.array([[1.0 if c == swap[lab] else 0.0 for c in classes] for lab in labels])
    est = NeuralClassifier(epochs=6, lr=5e-3, distill_alpha=1.0, distill_temperature=1.0, **TINY)
    est.fit(waves, labels, val=(waves, [swap[lab] for lab in labels]), soft_targets=teacher)
    pred = est.predict(waves)
    assert np.mean([p == swap[lab] for p, lab in zip(pred, labels, strict=True)]) > 0.8
    with pytest.raises(ParameterError, match="soft_targets"):
        NeuralClassifier(epochs=1, **TINY).fit(waves, labels, soft_targets=teacher[:, :2])


def test_weight_average_is_what_is_kept(data):
    waves, labels = data
    est = NeuralClassifier(epochs=6, lr=5e-3, ema=0.5, **TINY).fit(waves, labels)
    assert est.score(waves, labels) > 0.6
    assert NeuralClassifier(**est.get_params()).ema == 0.5


# -- persistence without pickled code; the estimator contract (no training: weights are random) --
def _untrained(arch: str = "cnn1d") -> NeuralClassifier:
    """A NeuralClassifier with built (random) weights and the fitted attributes set."""
    est = NeuralClassifier(arch=arch, width=4, hidden=8, layers=1, threads=1)
    est.dims_ = ModelDims(arch=arch, n_mels=64, n_classes=3, width=4, hidden=8, layers=1)
    est.model_ = build_model(est.dims_).eval()
    est.classes_ = np.array(["angry", "happy", "neutral"])  # numpy strings, as fit leaves them
    est.temperature_ = np.float64(1.5)
    est.history_ = [{"epoch": 1, "val_ua": np.float64(0.5)}]
    est.metrics_ = {"val_ua": np.float64(0.5)}
    return est


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_weights_hold_tensors_and_json_and_foreign_pickles_are_refused(tmp_path, monkeypatch):
    est = _untrained()
    est.save(tmp_path / "m", int8=False)
    ckpt = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)  # no pickled objects inside
    assert set(ckpt) == {"state_dict", "meta"}
    again = NeuralClassifier.load(tmp_path / "m")
    assert list(again.classes_) == list(est.classes_) and again.temperature_ == 1.5
    x = torch.randn(2, 64, 301)
    with torch.no_grad():
        assert torch.allclose(again.model_(x), est.model_(x))

    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil"
    evil.mkdir()
    torch.save({"state_dict": {}, "params": _Payload()}, evil / "weights.pt")
    with pytest.raises(ModelError, match="pickled objects are refused"):
        NeuralClassifier.load(evil)
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(Exception):  # noqa: B017 - whatever torch raises, the payload must not run
        T.load_tensors(evil / "weights.pt")
    assert not (tmp_path / "PWNED").exists()


def test_checkpoints_of_numpy_data_still_load(tmp_path):
    state = {"best_val_logits": np.zeros((2, 3), np.float32), "best": (np.float64(0.4), 2, None),
             "rng": (np.random.default_rng(0).bit_generator.state, torch.get_rng_state(), __import__("random").getstate())}
    torch.save(state, tmp_path / "checkpoint.pt")
    back = T.load_tensors(tmp_path / "checkpoint.pt")
    assert back["best"][0] == 0.4 and back["best_val_logits"].shape == (2, 3)


def test_export_refuses_weights_that_changed_since_save(tmp_path):
    from emovox.models.onnx_export import export_model

    est = _untrained()
    est.save(tmp_path / "m", int8=False)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert set(meta["sha256"]) == {"model.onnx", "weights.pt"}
    swapped = _untrained()  # other random weights, same shape: a swapped-in file
    torch.save({"state_dict": swapped.model_.state_dict(),
                "meta": torch.load(tmp_path / "m" / "weights.pt", weights_only=True)["meta"]},
               tmp_path / "m" / "weights.pt")
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        export_model(tmp_path / "m", tmp_path / "out", onnx=True)
    assert not (tmp_path / "out" / "model.onnx").exists()
    del meta["sha256"]["weights.pt"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="records no sha256"):
        export_model(tmp_path / "m", tmp_path / "out", onnx=True)


@pytest.mark.parametrize(("param", "value"), [("sampler", "balnced"), ("norm", "bnad"), ("pooling", "max"),
                                              ("arch", "transformer"), ("epochs", 0), ("ema", 1.5),
                                              ("widht", 8)])
def test_typos_and_bad_values_fail_before_training(param, value):
    est = NeuralClassifier(**{param: value})
    with pytest.raises(ParameterError, match=param):
        est.fit([np.zeros(SR, np.float32)] * 2, ["a", "b"])
    assert not hasattr(est, "model_")


def test_is_a_scikit_learn_classifier():
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.utils import get_tags

    import emovox.models.architectures as A
    import emovox.models.neural as N

    est = NeuralClassifier(arch="lstm", hidden=16)
    assert is_classifier(est) and get_tags(est).estimator_type == "classifier"
    search = GridSearchCV(est, {"lr": [1e-3, 3e-3]}, cv=2)
    assert clone(search).estimator.get_params()["hidden"] == 16
    assert set(N.ARCHS) == set(A.ARCHS)
    NeuralClassifier().validate_params()  # the defaults are valid


def test_unknown_architecture_says_what_to_set():
    with pytest.raises(ParameterError, match=r"set arch .* to one of .*crnn"):
        build_model(ModelDims(arch="transformer"))
