"""emovox export: int8 by ONNX Runtime quantisation, verified and recorded in model.json."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from emovox.cli import main
from emovox.inference import Predictor
from emovox.models.onnx_export import export_model, probe_inputs
from emovox.testing import make_toy_model


@pytest.fixture
def toy(tmp_path):
    return make_toy_model(tmp_path / "toy")


def test_export_int8_runs_in_onnxruntime(toy, tmp_path):
    out = tmp_path / "out"
    report = export_model(toy, out, onnx=True, int8=True)
    assert sorted(report["files"]) == ["model.int8.onnx", "model.onnx"]
    check = report["checks"]["model.int8.onnx"]
    assert check["argmax_agreement"] >= 0.9 and check["max_abs_diff"] < 0.5
    meta = json.loads((out / "model.json").read_text())
    assert set(meta["sha256"]) == {"model.onnx", "model.int8.onnx"} and meta["export"]["checks"]
    p = Predictor.load(out, int8=True)  # sha256 recorded, so the check passes
    x = probe_inputs(64, p.window_frames, n=3)
    assert p.logits(x).shape == (3, len(p.labels))
    assert (out / "card.md").is_file()


def test_export_cli(toy, tmp_path, capsys):
    assert main(["export", "--model", str(toy), "--onnx", "--int8", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "model.int8.onnx" in out and "argmax agreement" in out
    assert main(["export", "--model", str(toy)]) == 2
    assert main(["export", "--model", str(tmp_path / "missing"), "--onnx"]) == 1


def test_tflite_needs_a_torch_model(toy, tmp_path):
    from emovox.errors import ModelError

    with pytest.raises(ModelError, match="weights.pt"):
        export_model(toy, tmp_path / "o", tflite=True)


def test_in_place_export_keeps_the_model_loadable(toy):
    copy = toy.parent / "copy"
    shutil.copytree(toy, copy)
    export_model(copy, int8=True, onnx=False)
    a = Predictor.load(copy).logits(probe_inputs(64, 301, n=2))
    b = Predictor.load(toy).logits(probe_inputs(64, 301, n=2))
    np.testing.assert_allclose(a, b)


def test_clip_logits_open_one_session_for_all_clips(toy, monkeypatch):
    import onnxruntime as ort

    from emovox.models.onnx_export import onnx_clip_logits, onnx_logits

    opened = []
    real = ort.InferenceSession

    def counting(*args, **kwargs):
        opened.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counting)
    clips = [probe_inputs(64, 301, n=n, seed=n) for n in (1, 3, 2, 4)]
    logits = onnx_clip_logits(toy / "model.onnx", clips)
    assert len(opened) == 1  # training validation: one session, not one per clip
    assert logits.shape == (4, 7)
    np.testing.assert_allclose(logits[1], onnx_logits(toy / "model.onnx", clips[1]).mean(0), rtol=1e-5)
