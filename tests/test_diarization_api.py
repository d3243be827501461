"""``POST /v1/analyze?speakers=...``: the API gives the per-speaker timeline of the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import load

from .conftest import SR, speak

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
testing = pytest.importorskip("emovox.testing")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    toy = testing.make_toy_model(tmp_path_factory.mktemp("model") / "toy")
    env = {"EMOVOX_MODEL": str(toy), "EMOVOX_API_KEY": "", "EMOVOX_CORS_ORIGINS": ""}
    srv = testing.start_server(env=env, log=tmp_path_factory.mktemp("logs") / "api.log")
    try:
        yield srv.wait_healthy()
    finally:
        srv.stop()
    assert "Traceback" not in srv.log_text(), srv.log_text()[-3000:]


@pytest.fixture(scope="module")
def conversation(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("audio")
    a = load(speak("Hello, I am calling about my invoice, it is wrong again this month.", d / "a.wav",
                   voice="en-us", pitch=30, rate=150))
    b = load(speak("I am sorry to hear that. Could you give me the invoice number, please?", d / "b.wav",
                   voice="en-gb+f3", pitch=85, rate=180))
    gap = np.zeros(SR // 2, np.float32)
    path = d / "mono.wav"
    sf.write(path, np.concatenate([a, gap, b, gap, a, gap, b]), SR)
    return path


def test_analyze_speakers(server, conversation):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        r = client.post("/v1/analyze?speakers=2", files={"file": ("mono.wav", conversation.read_bytes(), "audio/wav")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["channels"] == ["speaker 1", "speaker 2"]
        assert set(body["summary"]["per_channel"]) == {"speaker 1", "speaker 2"}
        assert body["summary"]["speakers"]["found"] == 2
        for bad in ("9", "two"):
            r = client.post(f"/v1/analyze?speakers={bad}", content=conversation.read_bytes(),
                            headers={"content-type": "audio/wav"})
            assert r.status_code == 422, r.text
        r = client.post("/v1/analyze?speakers=2&channels=split", content=conversation.read_bytes(),
                        headers={"content-type": "audio/wav"})
        assert r.status_code == 400 and "channels='mix'" in r.text
