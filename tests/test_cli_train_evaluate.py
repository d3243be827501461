"""End to end on generated audio: ``emovox train`` → model directory → ``emovox evaluate``.

Four "emotions" are synthetic sounds (tones, chirps, noise) spoken by eight "speakers" (pitch
factors); a classical model trains in seconds and must separate them. Runs in CI, no corpora.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.cli import main

SR = 16000
LABELS = ("neutral", "happy", "sad", "angry")


def _clip(label: str, speaker: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(1000 * speaker + 10 * LABELS.index(label) + k)
    t = np.arange(int(0.6 * SR)) / SR
    f0 = 140.0 * (1 + 0.08 * speaker)
    if label == "neutral":
        y = 0.2 * np.sin(2 * np.pi * f0 * t)
    elif label == "happy":
        y = 0.3 * np.sin(2 * np.pi * (2.5 * f0 + 150 * t) * t)
    elif label == "sad":
        y = 0.05 * np.sin(2 * np.pi * 0.7 * f0 * t) * np.exp(-2 * t)
    else:
        y = 0.5 * rng.standard_normal(len(t)) * np.abs(np.sin(2 * np.pi * 3 * t))
    return (y + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def make_dataset(root: Path, speakers: range, *, labels=LABELS, per_label: int = 3, name: str = "manifest") -> Path:
    """WAV clips plus a manifest CSV (path,label,speaker,gender); returns the CSV."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in speakers:
        for lab in labels:
            for k in range(per_label):
                path = root / f"s{s}_{lab}_{k}.wav"
                sf.write(path, _clip("neutral" if lab == "calm" else lab, s, k), SR)
                rows.append([path.name, lab, f"spk{s}", "female" if s % 2 else "male"])
    csv_path = root / f"{name}.csv"
    with csv_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "speaker", "gender"])
        w.writerows(rows)
    return csv_path


pytestmark = pytest.mark.slow  # one real training run (~5-15 s on a shared 2-core machine)

RECIPE = """
name = "tiny_logreg"
seed = 0
[data]
corpora = ["ravdess"]
view = "7class"
[model]
kind = "classical"
arch = "logreg"
[features]
set = "logmel_stats"
[search]
grid = { C = [0.1, 1.0] }
folds = 2
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One model for the module: 6 speakers x 4 labels x 2 clips, trained once."""
    tmp = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMOVOX_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        recipe = tmp / "tiny_logreg.toml"
        recipe.write_text(RECIPE)
        train_csv = make_dataset(tmp / "train", range(6), per_label=2)
        model = tmp / "model"
        assert main(["train", "--recipe", str(recipe), "--manifest", str(train_csv), "--out", str(model),
                     "--no-progress"]) == 0
    return model


def test_train_writes_a_model_directory_and_a_report(trained, capsys):
    for name in ("model.joblib", "model.json", "model.onnx", "report/report.html", "report/metrics.json",
                 "report/predictions.csv", "report/confusion.png", "report/config.json", "report/run.json"):
        assert (trained / name).is_file(), name
    meta = json.loads((trained / "model.json").read_text())
    assert meta["kind"] == "classical" and meta["features"]["set"] == "logmel_stats"
    assert sorted(meta["labels"]) == sorted(LABELS)
    assert meta["training"]["search"]["n_splits"] == 2
    assert meta["metrics"]["validation"]["ua"] > 0.8
    report = json.loads((trained / "report" / "metrics.json").read_text())
    fold = report["folds"][0]
    assert fold["n_test"] > 0 and fold["n_train"] + fold["n_test"] == 48


def test_evaluate_json_on_unseen_speakers(trained, tmp_path, capsys):
    test_csv = make_dataset(tmp_path / "test", range(8, 11), per_label=2)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained), "--manifest", str(test_csv), "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"ua", "wa", "macro_f1", "per_class", "confusion", "labels", "n"}
    assert out["n"] == 24 and len(out["labels"]) == 4
    assert out["ua"] > 0.8 and np.asarray(out["confusion"]).sum() == 24


def test_evaluate_restricts_to_the_test_classes_after_mapping_calm(trained, tmp_path, capsys):
    test_csv = make_dataset(tmp_path / "test2", range(8, 10), labels=("calm", "happy"), per_label=2)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained), "--manifest", str(test_csv), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["labels"] == sorted(out["labels"], key=json.loads((trained / "model.json").read_text())["labels"].index)
    assert set(out["labels"]) == {"neutral", "happy"}  # calm -> neutral through the 7-class view
    assert len(out["confusion"]) == 2 and "restricted" in captured.err


def test_evaluate_table_and_run_directory(trained, tmp_path, capsys):
    test_csv = make_dataset(tmp_path / "test3", range(8, 10), per_label=1)
    assert main(["evaluate", "--model", str(trained), "--manifest", str(test_csv), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "UA " in text and "confusion" in text
    assert (tmp_path / "run" / "report.html").is_file()


def test_train_and_evaluate_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[model]\narch = "transformer"\n')
    assert main(["train", "--recipe", str(bad), "--manifest", "x.csv", "--out", str(tmp_path / "m")]) == 2
    assert "arch" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path), "--manifest", str(tmp_path / "none.csv")]) == 3
    csv_path = make_dataset(tmp_path / "d", range(2), per_label=1)
    assert main(["evaluate", "--model", str(tmp_path / "nomodel"), "--manifest", str(csv_path)]) == 1
    assert "model.json" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


NEURAL_RECIPE = """
name = "tiny_cnn1d"
seed = 0
[data]
corpora = ["ravdess"]
view = "7class"
[model]
kind = "neural"
arch = "cnn1d"
params = { width = 8, layers = 1, dropout = 0.0 }
[train]
epochs = 2
batch_size = 16
lr = 3e-3
patience = 2
window_seconds = 0.5
"""


def test_neural_train_then_evaluate_through_the_predictor(tmp_path, capsys):
    pytest.importorskip("torch")
    recipe = tmp_path / "tiny_cnn1d.toml"
    recipe.write_text(NEURAL_RECIPE)
    train_csv = make_dataset(tmp_path / "train", range(6), per_label=2)
    model = tmp_path / "model"
    assert main(["train", "--recipe", str(recipe), "--manifest", str(train_csv), "--out", str(model), "--no-progress"]) == 0
    for name in ("model.onnx", "model.json", "weights.pt", "report/report.html", "report/curves.png"):
        assert (model / name).is_file(), name
    assert json.loads((model / "model.json").read_text())["view"] == "7class"
    assert any((model / "checkpoints").iterdir())  # resumable
    test_csv = make_dataset(tmp_path / "test", range(8, 10), labels=("calm", "angry"), per_label=2)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--manifest", str(test_csv), "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["labels"]) == {"neutral", "angry"} and out["n"] == 8
