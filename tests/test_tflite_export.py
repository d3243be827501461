"""TFLite files of a CRNN model directory: converted from weights.pt, run in LiteRT, shipped, copied.

The conversion tests need the export stack (litert-torch and ai-edge-litert; CI installs it from
.ci/export-nodeps.txt) and torch; they run a real LiteRT interpreter against ONNX Runtime.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import numpy as np
import pytest

from emovox.cli import main
from emovox.errors import MissingDependencyError, ModelError
from emovox.inference import Predictor
from emovox.models.directory import resolve_model_dir
from emovox.models.onnx_export import export_model, onnx_logits, probe_inputs
from emovox.models.tflite_export import MAX_FLOAT_DIFF, TFLITE_FILES, export_tflite, tflite_logits
from emovox.testing import make_toy_model

LABELS = ["angry", "happy", "neutral"]


def _crnn_dir(path):
    """A small untrained CRNN saved as NeuralClassifier.save does (weights.pt, model.onnx, model.json)."""
    torch = pytest.importorskip("torch")
    from emovox.models.architectures import ModelDims, build_model
    from emovox.models.neural import NeuralClassifier

    torch.manual_seed(0)
    est = NeuralClassifier(arch="crnn", width=4, hidden=8, window_seconds=1.0, hop_seconds=0.5, threads=1)
    est.dims_ = ModelDims(arch="crnn", n_mels=64, n_classes=len(LABELS), width=4, hidden=8)
    est.model_ = build_model(est.dims_).eval()
    est.classes_ = np.asarray(LABELS)
    est.temperature_, est.history_, est.metrics_ = 1.0, [], {}
    return est.save(path, name="test-crnn", int8=False)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A CRNN directory after export_tflite: the one conversion most tests share."""
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    src = _crnn_dir(tmp_path_factory.mktemp("crnn") / "m")
    return src, export_tflite(src)


def test_export_tflite_converts_and_records(converted):
    src, paths = converted
    assert set(paths) == set(TFLITE_FILES) and all(p.parent == src and p.is_file() for p in paths.values())
    meta = json.loads((src / "model.json").read_text())
    assert set(TFLITE_FILES) <= set(meta["sha256"]) and "weights.pt" in meta["sha256"]
    checks = meta["tflite"]["checks"]
    assert checks["model.tflite"]["max_abs_diff"] < MAX_FLOAT_DIFF
    assert checks["model.int8.tflite"]["argmax_agreement"] >= 0.8
    # fresh windows, not the probe: LiteRT float32 vs ONNX Runtime
    x = probe_inputs(64, 101, n=5, seed=7)
    ref = onnx_logits(src / "model.onnx", x)
    np.testing.assert_allclose(tflite_logits(paths["model.tflite"], x), ref, atol=MAX_FLOAT_DIFF)
    assert np.abs(tflite_logits(paths["model.int8.tflite"], x) - ref).max() < 0.1
    Predictor.load(src)  # model.json still matches model.onnx


def test_cli_copies_hash_checked_tflite(converted, tmp_path, capsys):
    src, _ = converted
    out = tmp_path / "edge"
    assert main(["export", "--model", str(src), "--tflite", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "copied" in text and "model.int8.tflite" in text and "argmax agreement" in text
    for name in TFLITE_FILES:
        assert (out / name).read_bytes() == (src / name).read_bytes()
    meta = json.loads((out / "model.json").read_text())
    assert set(meta["sha256"]) == set(TFLITE_FILES) and meta["labels"] == LABELS
    # a fresh install (no converter, no interpreter) still gets the hash-checked files
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "litert_torch", None)
        mp.setitem(sys.modules, "ai_edge_litert", None)
        assert main(["export", "--model", str(src), "--tflite", "--out", str(tmp_path / "bare")]) == 0
    assert "not run here" in capsys.readouterr().out
    assert (tmp_path / "bare" / "model.tflite").read_bytes() == (src / "model.tflite").read_bytes()
    # a changed file is refused, with one line and exit 1
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    with open(bad / "model.tflite", "ab") as f:
        f.write(b"\0")
    assert main(["export", "--model", str(bad), "--tflite", "--out", str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "SHA-256 mismatch" in err and "Traceback" not in err


def test_export_model_converts_when_the_directory_has_no_tflite(tmp_path):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    src = _crnn_dir(tmp_path / "m")
    report = export_model(src, tmp_path / "out", onnx=True, tflite=True)
    assert any("converted" in n for n in report["notes"])
    assert report["checks"]["model.tflite"]["max_abs_diff"] < MAX_FLOAT_DIFF
    assert report["checks"]["model.int8.tflite"]["argmax_agreement"] >= 0.8
    assert set(TFLITE_FILES) <= set(json.loads((tmp_path / "out" / "model.json").read_text())["sha256"])


def test_conversion_without_the_export_extra_names_it(tmp_path, monkeypatch, capsys):
    src = _crnn_dir(tmp_path / "m")
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r'pip install "emovox\[export\]"'):
        export_tflite(src)
    assert main(["export", "--model", str(src), "--tflite", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert 'pip install "emovox[export]"' in err and len(err.splitlines()) == 1


def test_tflite_needs_weights_or_shipped_files(tmp_path, capsys):
    toy = make_toy_model(tmp_path / "toy")
    with pytest.raises(ModelError, match="weights.pt"):
        export_tflite(toy)
    assert main(["export", "--model", str(toy), "--tflite", "--out", str(tmp_path / "o")]) == 1
    assert "weights.pt" in capsys.readouterr().err


def test_tflite_is_for_the_crnn_and_shipped_models_stay_as_they_are(tmp_path, capsys):
    assert main(["export", "--model", "default", "--tflite", "--out", str(tmp_path / "o")]) == 1
    assert "logmel_cnn" in capsys.readouterr().err
    assert main(["export", "--model", "tiny", "--int8"]) == 1  # no --out: never into the package
    assert "--out" in capsys.readouterr().err


def test_shipped_tiny_model_exports_tflite(tmp_path, capsys):
    tiny = resolve_model_dir("tiny")
    missing = [f for f in TFLITE_FILES if not (tiny / f).is_file()]
    if missing:
        pytest.skip(f"the shipped tiny model has no {', '.join(missing)} yet "
                    "(emovox.models.tflite_export.export_tflite writes them from a new model's weights.pt)")
    out = tmp_path / "edge"
    assert main(["export", "--model", "tiny", "--tflite", "--out", str(out)]) == 0
    assert "copied" in capsys.readouterr().out
    for name in TFLITE_FILES:
        assert (out / name).read_bytes() == (tiny / name).read_bytes()
    if importlib.util.find_spec("ai_edge_litert") is not None:  # without it, the copy is all there is
        card = json.loads((tiny / "model.json").read_text())
        x = probe_inputs(64, int(card["window_frames"]), n=4, seed=3)
        ref = onnx_logits(tiny / "model.onnx", x)
        np.testing.assert_allclose(tflite_logits(out / "model.tflite", x), ref, atol=MAX_FLOAT_DIFF)
