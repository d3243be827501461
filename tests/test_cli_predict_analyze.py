"""emovox predict / analyze / model info / demo: output shapes and exit codes (subprocess-free)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from emovox.cli import main
from emovox.testing import make_toy_model

from .conftest import SR, espeak_available, speak


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(make_toy_model(tmp_path_factory.mktemp("model") / "toy", int8=True))


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory):
    return speak("Hello, I am calling about my invoice. It is wrong again.",
                 tmp_path_factory.mktemp("s") / "speech.wav")


@pytest.fixture(scope="module")
def call_file(tmp_path_factory, speech_file):
    y = sf.read(speech_file, dtype="float32")
    from emovox.audio import resample

    s = resample(y[0], y[1])
    gap = np.zeros(SR, np.float32)
    left = np.concatenate([gap, s, gap, np.zeros_like(s), gap])
    right = np.concatenate([gap, np.zeros_like(s), gap, s * 0.8, gap])
    path = tmp_path_factory.mktemp("call") / "call.wav"
    sf.write(path, np.stack([left, right], axis=1), SR)
    return path


def _bad_files(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("this is not audio\n")
    (tmp_path / "corrupt.mp3").write_bytes(b"ID3" + bytes(range(256)) * 8)
    return [tmp_path / "empty.wav", tmp_path / "notes.txt", tmp_path / "corrupt.mp3", tmp_path / "missing.wav"]


def test_predict_table_and_json(model, speech_file, capsys):
    assert main(["predict", str(speech_file), "--model", model]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["file", "emotion", "confidence", "top-3"]
    assert str(speech_file) in out[1]
    assert main(["predict", str(speech_file), "--model", model, "--json", "--int8", "--threads", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["file"] == str(speech_file) and rows[0]["channel"] == "mix"
    assert set(rows[0]) == {"file", "channel", "start", "end", "emotion", "confidence", "uncertain", "probabilities"}


def test_predict_restrict(model, speech_file, capsys):
    assert main(["predict", str(speech_file), "--model", model, "--json", "--restrict", "angry,sad"]) == 0
    assert set(json.loads(capsys.readouterr().out)[0]["probabilities"]) == {"angry", "sad"}
    assert main(["predict", str(speech_file), "--model", model, "--restrict", "bored"]) == 2


@pytest.mark.parametrize("index", range(4))
def test_predict_bad_file_exit_3_one_line(model, tmp_path, capsys, index):
    bad = _bad_files(tmp_path)[index]
    assert main(["predict", str(bad), "--model", model]) == 3
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emovox: error: ") and str(bad) in err[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_predict_good_and_bad_prints_good_then_exit_3(model, speech_file, tmp_path, capsys):
    bad = _bad_files(tmp_path)
    assert main(["predict", str(bad[0]), str(speech_file), str(bad[3]), "--model", model, "--json"]) == 3
    captured = capsys.readouterr()
    assert [r["file"] for r in json.loads(captured.out)] == [str(speech_file)]
    assert len(captured.err.strip().splitlines()) == 2


def test_analyze_split_outputs_and_plot(model, call_file, tmp_path, capsys):
    out_csv, png = tmp_path / "t.csv", tmp_path / "t.png"
    code = main(["analyze", str(call_file), "--channels", "split", "--model", model,
                 "--out", str(out_csv), "--plot", str(png)])
    assert code == 0
    text = capsys.readouterr().out
    assert "agent" in text and "customer" in text and "dominant" in text
    assert out_csv.read_text().startswith("file,channel,start,end,emotion")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["analyze", str(call_file), "--channels", "split", "--model", model, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {s["channel"] for s in doc["segments"]} == {"agent", "customer"}
    assert set(doc["summary"]["per_channel"]) == {"agent", "customer"}


def test_analyze_bad_input_and_usage(model, tmp_path, speech_file, capsys):
    for bad in _bad_files(tmp_path):
        assert main(["analyze", str(bad), "--model", model]) == 3
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0]
    assert main(["analyze", str(speech_file), "--model", model, "--channels", "split"]) == 2
    assert main(["analyze", str(speech_file), "--model", model, "--out", "x.xlsx"]) == 2


def test_model_info(model, capsys):
    assert main(["model", "info", "--model", model]) == 0
    out = capsys.readouterr().out
    assert "temperature 1.500" in out and "ECE 0.2000 before -> 0.0500 after" in out and "sha256 ok" in out
    assert main(["model", "info", "--model", model, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["labels"][0] == "neutral" and doc["files"]["model.onnx"]["sha256_ok"] is True
    assert main(["model", "info", "--model", str(model) + "-missing"]) == 1


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_demo_writes_a_deterministic_stereo_call(tmp_path, capsys):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    assert main(["demo", "--out", str(a)]) == 0
    assert main(["demo", "--out", str(b)]) == 0
    info = sf.info(a)
    assert info.channels == 2 and info.samplerate == SR and 45 < info.duration < 80
    assert a.read_bytes() == b.read_bytes()


def test_demo_from_the_shipped_copy(tmp_path, capsys):
    out = tmp_path / "d.flac"
    assert main(["demo", "--shipped", "--out", str(out)]) == 0
    info = sf.info(out)
    assert info.channels == 2 and info.samplerate == SR and 45 < info.duration < 80
    assert main(["demo", "--out", str(tmp_path / "d.mp4")]) == 2


def test_truncated_file_exits_3_unless_partial_is_allowed(model, tmp_path, capsys):
    import io

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    sf.write(buf, (0.1 * rng.standard_normal(int(3.3 * SR))).astype(np.float32), SR, format="FLAC")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    for command in (["predict", str(cut)], ["analyze", str(cut)]):
        assert main([*command, "--model", model]) == 3
        assert f"{cut}: truncated: decoded" in capsys.readouterr().err
        assert main([*command, "--model", model, "--allow-partial"]) == 0
        capsys.readouterr()


def test_analyze_plot_uses_the_one_colour_table(model, tmp_path):
    pytest.importorskip("matplotlib")
    from emovox.labels import EMOTION_COLOURS
    from emovox.ui import charts

    assert charts.EMOTION_COLORS is EMOTION_COLOURS  # the web app and the plots share one table
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(5 * SR) * np.sin(np.linspace(0, 30, 5 * SR)) ** 2).astype(np.float32)
    sf.write(tmp_path / "n.wav", y, SR)
    png = tmp_path / "plot.png"
    assert main(["analyze", str(tmp_path / "n.wav"), "--model", model, "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000
