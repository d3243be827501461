"""In-process tests of the API's parts: settings, error mapping, upload probing, the streaming helper."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from emovox.api.errors import status_of
from emovox.api.settings import Settings
from emovox.api.uploads import probe_duration
from emovox.cli import main
from emovox.errors import AudioError, DataError, MissingDependencyError, ModelError, ParameterError
from emovox.inference import Predictor
from emovox.inference.streaming import StreamingPredictor, pcm16_to_float
from emovox.testing import make_toy_model

from .conftest import SR, speak


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> Predictor:
    return Predictor.load(make_toy_model(tmp_path_factory.mktemp("model") / "toy"))


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("EMOVOX_MAX_UPLOAD_MB", "2")
    monkeypatch.setenv("EMOVOX_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("EMOVOX_API_KEY", "k")
    monkeypatch.setenv("EMOVOX_INT8", "yes")
    s = Settings.from_env(request_timeout=5)
    assert s.max_upload_bytes == 2 * 2**20 and s.api_key == "k" and s.int8 and s.request_timeout == 5
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert "k" not in str(s.public())
    monkeypatch.setenv("EMOVOX_MAX_DURATION", "ten")
    with pytest.raises(ParameterError, match="EMOVOX_MAX_DURATION"):
        Settings.from_env()
    monkeypatch.setenv("EMOVOX_MAX_DURATION", "-1")
    with pytest.raises(ParameterError, match=">="):
        Settings.from_env()
    with pytest.raises(ParameterError):
        Settings(max_concurrency=0)


def test_emovox_errors_map_to_4xx_and_503():
    assert status_of(AudioError("x")) == (422, "audio_error")
    assert status_of(DataError("x")) == (422, "data_error")
    assert status_of(ParameterError("x")) == (400, "parameter_error")
    assert status_of(ModelError("x"))[0] == 503
    assert status_of(MissingDependencyError("x"))[0] == 503


def test_probe_duration_reads_headers_and_refuses_garbage():
    buf = io.BytesIO()
    sf.write(buf, np.zeros(3 * SR, np.float32), SR, format="FLAC")
    assert probe_duration(buf.getvalue()) == pytest.approx(3.0)
    with pytest.raises(AudioError, match="not a readable audio file"):
        probe_duration(b"definitely not audio" * 10, name="x.bin")


def test_pcm16_decoding():
    y = pcm16_to_float(np.array([0, 16384, -32768], dtype="<i2").tobytes())
    assert y.dtype == np.float32 and y.tolist() == [0.0, 0.5, -1.0]
    for bad in (b"", b"\x00\x01\x02"):
        with pytest.raises(AudioError):
            pcm16_to_float(bad)


def test_streaming_updates_tile_the_stream(predictor, tmp_path):
    from emovox.audio import load

    y = load(speak("I am calling because my order never arrived and nobody answers my emails.", tmp_path / "s.wav"))
    live = StreamingPredictor(predictor, update_seconds=1.0)
    segments = []
    for i in range(0, len(y), 3200):  # 200 ms chunks
        segments += live.feed(y[i : i + 3200])
    assert len(segments) == len(y) // SR
    segments += live.flush()
    assert live.flush() == []  # nothing left
    assert segments[0]["start"] == 0 and segments[-1]["end"] == pytest.approx(len(y) / SR, abs=1e-3)
    for a, b in zip(segments, segments[1:], strict=False):
        assert b["start"] == a["end"]
        assert b["window_start"] == pytest.approx(max(0.0, b["end"] - 3.0), abs=1e-3)
    # the update at t equals predicting the 3 s window ending at t directly
    t = 3 * SR
    direct = predictor.predict(y[t - 3 * SR : t])
    assert segments[2]["emotion"] == direct.label
    assert segments[2]["probabilities"] == pytest.approx({k: round(v, 4) for k, v in direct.probabilities.items()})
    summary = live.summary()
    assert summary["duration"] == pytest.approx(len(y) / SR, abs=1e-3) and summary["segments"] >= 1
    assert len(live._buffer) <= live.window + live.step + 3200  # memory: about one window is kept
    # the last (partial) update looks at the full window that ends with the stream
    tail = predictor.predict(y[len(y) - 3 * SR :])
    assert segments[-1]["emotion"] == tail.label
    assert segments[-1]["window_start"] == pytest.approx((len(y) - 3 * SR) / SR, abs=1e-3)


def test_streaming_one_big_chunk_equals_small_chunks(predictor):
    rng = np.random.default_rng(0)
    y = (0.2 * rng.standard_normal(5 * SR) * np.sin(np.linspace(0, 40, 5 * SR)) ** 2).astype(np.float32)
    a = StreamingPredictor(predictor)
    b = StreamingPredictor(predictor)
    big = a.feed(y) + a.flush()
    small = [s for i in range(0, len(y), 1600) for s in b.feed(y[i : i + 1600])] + b.flush()
    assert big == small


def test_streaming_rejects_bad_parameters(predictor):
    with pytest.raises(ParameterError):
        StreamingPredictor(predictor, update_seconds=0)
    live = StreamingPredictor(predictor)
    with pytest.raises(ParameterError):
        live.feed(np.zeros((2, 100), np.float32))
    with pytest.raises(AudioError):
        live.feed(np.array([np.nan], np.float32))


def test_serve_and_ui_reject_bad_options(capsys):
    assert main(["serve", "--workers", "0"]) == 2
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["ui", "--port", "0"]) == 2
    assert "--port" in capsys.readouterr().err


def test_service_bounds_concurrency_and_times_out(predictor):
    import time

    import anyio

    from emovox.api.errors import ApiError
    from emovox.api.service import Service

    async def scenario():
        service = Service(predictor, Settings(max_concurrency=2, request_timeout=1.0))
        running, peak = 0, 0

        def work():
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            time.sleep(0.05)
            running -= 1

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(service.run, work)
        assert peak == 2
        with pytest.raises(ApiError) as err:
            await service.run(time.sleep, 3.0)
        assert err.value.status == 504 and err.value.type == "timeout"

    anyio.run(scenario)


def test_api_imports_no_training_stack(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from emovox.api.app import create_app; from emovox.api import service, streaming; "
            "create_app(); heavy = {'torch', 'librosa', 'sklearn', 'pandas', 'streamlit'} & set(sys.modules); "
            "print(sorted(heavy)); sys.exit(bool(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shipped_model_serves_when_present(tmp_path):
    from emovox.models.directory import default_model_dir

    if not (default_model_dir() / "model.json").is_file():
        pytest.skip("no shipped model yet")
    fastapi_testclient = pytest.importorskip("fastapi.testclient")
    from emovox.api.app import create_app

    wav = speak("Good morning, I would like to change my address please.", tmp_path / "s.wav")
    with fastapi_testclient.TestClient(create_app(Settings(model_dir=None))) as client:
        health = client.get("/v1/health").json()
        assert health["model"]["name"] == Predictor.load().card.name
        r = client.post("/v1/predict", files={"file": ("s.wav", wav.read_bytes(), "audio/wav")})
        assert r.status_code == 200 and r.json()["emotion"] in (*Predictor.load().labels, "no_speech")
