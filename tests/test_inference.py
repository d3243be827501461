"""Predictor: the one prediction path (toy ONNX model made in tmp; the shipped one when present)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.errors import AudioError, ModelError, ParameterError
from emovox.inference import NO_SPEECH, Predictor, load_card
from emovox.models.directory import default_model_dir
from emovox.testing import TOY_LABELS, make_toy_model

from .conftest import SR, speak, tone


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("model") / "toy", int8=True)


@pytest.fixture(scope="module")
def predictor(toy_dir) -> Predictor:
    return Predictor.load(toy_dir, threads=1)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    from emovox.audio import load

    path = speak("Hello, I am calling about my invoice. It is wrong again and I am upset.",
                 tmp_path_factory.mktemp("speech") / "s.wav")
    return load(path)


def test_predict_speech_gives_calibrated_probabilities(predictor, speech):
    p = predictor.predict(speech)
    assert p.label in TOY_LABELS
    assert set(p.probabilities) == set(TOY_LABELS)
    assert abs(sum(p.probabilities.values()) - 1.0) < 1e-4
    assert p.confidence == pytest.approx(max(p.probabilities.values()), abs=1e-6)
    assert isinstance(p.uncertain, bool)
    assert [k for k, _ in p.top(3)][0] == p.label


def test_predict_accepts_paths_bytes_and_short_clips(predictor, speech, tmp_path):
    path = tmp_path / "s.flac"
    sf.write(path, speech, SR)
    a = predictor.predict(path)
    b = predictor.predict(path.read_bytes())
    assert a.label == b.label and a.probabilities == pytest.approx(b.probabilities, abs=1e-3)
    short = predictor.predict(speech[: SR // 2 + SR // 4], vad=False)  # shorter than a window: tiled
    assert short.label in TOY_LABELS


def test_restrict_to_renormalises_over_the_subset(predictor, speech):
    full = predictor.predict(speech)
    sub = predictor.predict(speech, restrict_to=["angry", "sad"])
    assert set(sub.probabilities) == {"angry", "sad"}
    assert sum(sub.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    ratio_full = full.probabilities["angry"] / full.probabilities["sad"]
    ratio_sub = sub.probabilities["angry"] / sub.probabilities["sad"]
    assert ratio_sub == pytest.approx(ratio_full, rel=1e-2)
    with pytest.raises(ParameterError, match="unknown label"):
        predictor.predict(speech, restrict_to=["bored"])


@pytest.mark.parametrize("kind", ["silence", "white_noise", "tone", "tone_with_hiss", "chord"])
def test_non_speech_gives_no_speech(predictor, kind):
    rng = np.random.default_rng(0)
    n = 3 * SR
    y = {
        "silence": np.zeros(n, np.float32),
        "white_noise": rng.normal(0, 0.1, n).astype(np.float32),
        "tone": tone(440, 3.0),
        "tone_with_hiss": tone(440, 3.0) + rng.normal(0, 0.003, n).astype(np.float32),
        "chord": sum(tone(f, 3.0, amp=0.15) for f in (220, 277, 330, 440)),
    }[kind]
    p = predictor.predict(y)
    assert p.label == NO_SPEECH and p.probabilities == {}
    assert predictor.predict(y, vad=False).label in TOY_LABELS


def test_predict_many_matches_predict(predictor, speech):
    many = predictor.predict_many([speech, np.zeros(SR, np.float32), speech[: 2 * SR]])
    assert many[0] == predictor.predict(speech)
    assert many[1].label == NO_SPEECH
    assert many[2] == predictor.predict(speech[: 2 * SR])


def test_predict_segments_batches_spans(predictor, speech):
    segs = predictor.predict_segments(speech, [(0.0, 1.5), (1.0, 4.0)])
    assert len(segs) == 2 and all(s.label in TOY_LABELS for s in segs)
    with pytest.raises(ParameterError):
        predictor.predict_segments(speech, [(2.0, 1.0)])


def test_bad_audio_raises_audio_error(predictor, tmp_path):
    with pytest.raises(AudioError):
        predictor.predict(np.array([], dtype=np.float32))
    with pytest.raises(AudioError):
        predictor.predict(np.array([0.0, np.nan], dtype=np.float32))
    (tmp_path / "t.wav").write_text("not audio")
    with pytest.raises(AudioError):
        predictor.predict(tmp_path / "t.wav")


def test_soundfile_layout_is_rejected_with_the_fix(predictor):
    stereo = np.stack([tone(220, 2.0), tone(330, 2.0)], axis=1)  # soundfile's (n, channels)
    with pytest.raises(ParameterError, match=r"transpose soundfile's \(n, channels\)"):
        predictor.predict(stereo, vad=False)
    assert predictor.predict(stereo.T, vad=False).label in TOY_LABELS  # (channels, n) is mixed down


def test_blas_limit_holds_under_overlapping_calls():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    code = """
import threading
import numpy as np
from threadpoolctl import threadpool_limits
from emovox._threads import blas_threads
from emovox.inference.predictor import single_thread_blas

if not blas_threads():
    print("SKIP"); raise SystemExit(0)
threadpool_limits(limits=2, user_api="blas")  # a multi-threaded BLAS, whatever this machine has
a, b = single_thread_blas(), single_thread_blas()
a.__enter__(); b.__enter__()
a.__exit__(None, None, None)                    # one API thread finishes while another computes
assert blas_threads() and set(blas_threads()) == {1}, blas_threads()
b.__exit__(None, None, None)

def work():
    for _ in range(20):
        with single_thread_blas():
            np.ones((64, 64)) @ np.ones((64, 64))
threads = [threading.Thread(target=work) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
assert set(blas_threads()) == {1}, blas_threads()
print("OK")
"""
    del threadpoolctl
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if proc.stdout.strip() == "SKIP":
        pytest.skip("no BLAS library that threadpoolctl can control")
    assert proc.stdout.strip() == "OK"


def test_int8_model_agrees_with_float(toy_dir, speech):
    f32 = Predictor.load(toy_dir).predict(speech)
    i8 = Predictor.load(toy_dir, int8=True).predict(speech)
    assert i8.label == f32.label


def test_sha256_mismatch_is_a_model_error(toy_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("model.onnx", "card.md"):
        (bad / f).write_bytes((toy_dir / f).read_bytes())
    meta = json.loads((toy_dir / "model.json").read_text())
    meta["sha256"]["model.onnx"] = "0" * 64
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        Predictor.load(bad)


def test_missing_or_broken_model_dirs(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Predictor.load(tmp_path / "nowhere")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        load_card(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text(json.dumps({"labels": ["a", "b"]}))
    with pytest.raises(ModelError, match="missing key"):
        load_card(tmp_path / "m")


def test_threads_must_be_positive(toy_dir):
    with pytest.raises(ParameterError):
        Predictor.load(toy_dir, threads=0)


def test_inference_path_imports_no_torch_librosa_sklearn(toy_dir):
    code = (
        "import sys, numpy as np\n"
        "from emovox.inference import Predictor, analyze\n"
        f"p = Predictor.load({str(toy_dir)!r})\n"
        "rng = np.random.default_rng(0)\n"
        "y = (np.sin(np.arange(48000) / 9) * np.abs(np.sin(np.arange(48000) / 2000)) * 0.3).astype('float32')\n"
        "p.predict(y); analyze(y, predictor=p)\n"
        "bad = [m for m in ('torch', 'librosa', 'sklearn', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported on the inference path: {out.stdout}"


def test_shipped_model_when_present(speech):
    if not (default_model_dir() / "model.json").is_file():
        pytest.skip("the shipped model is not in src/emovox/assets/model yet")
    p = Predictor.load()
    assert p.predict(speech).label in p.labels
    assert p.predict(np.zeros(2 * SR, np.float32)).label == NO_SPEECH
