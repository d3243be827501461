"""The API against real ``emovox serve`` processes (uvicorn) on loopback, with the toy model.

Two servers start together once per module: an open one (small limits, so "huge" uploads are
cheap to send) and one with an API key and CORS. Audio fixtures are made here: espeak-ng speech,
tones, noise, corrupt bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import load
from emovox.inference import Predictor, analyze
from emovox.testing import TOY_LABELS, make_toy_model

from .conftest import SR, speak, tone

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
ws_client = pytest.importorskip("websockets.sync.client")
ws_exceptions = pytest.importorskip("websockets.exceptions")
testing = pytest.importorskip("emovox.testing")

pytestmark = pytest.mark.slow  # two server processes start once for the module (~10 s)
KEY = "s3cret-key"
MAX_MB = 1.0
MAX_DURATION = 30


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    return make_toy_model(tmp_path_factory.mktemp("model") / "toy")


@pytest.fixture(scope="module")
def servers(toy_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    base = {"EMOVOX_MODEL": str(toy_dir), "EMOVOX_MAX_UPLOAD_MB": str(MAX_MB),
            "EMOVOX_MAX_DURATION": str(MAX_DURATION), "EMOVOX_API_KEY": "", "EMOVOX_CORS_ORIGINS": ""}
    open_ = testing.start_server(env=base, log=logs / "open.log")
    keyed = testing.start_server(env={**base, "EMOVOX_API_KEY": KEY, "EMOVOX_CORS_ORIGINS": "https://app.example"},
                                 log=logs / "keyed.log")
    try:
        yield open_.wait_healthy(), keyed.wait_healthy()
    finally:
        open_.stop()
        keyed.stop()
    for server in (open_, keyed):  # no tracebacks in the logs: bad input never became a 500
        assert "Traceback" not in server.log_text(), server.log_text()[-3000:]


@pytest.fixture(scope="module")
def server(servers):
    return servers[0]


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    return speak("Hello, I am calling about my invoice. It is wrong again and I am very upset about it.", path)


@pytest.fixture(scope="module")
def stereo_file(speech_file, tmp_path_factory) -> Path:
    y = load(speech_file)
    call = np.zeros((2, len(y) * 2 + SR), dtype=np.float32)
    call[0, : len(y)] = y
    call[1, len(y) + SR :] = y
    path = tmp_path_factory.mktemp("audio") / "call.flac"
    sf.write(path, call.T, SR)
    return path


def _wav_bytes(y: np.ndarray, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _error(r, status: int, kind: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    if kind:
        assert body["error"]["type"] == kind, body
    return body["error"]


# -- meta ---------------------------------------------------------------------------------------
def test_health_and_model_card(client):
    h = client.get("/v1/health").json()
    assert h["status"] == "ok" and h["model"] == {"name": "toy", "version": "0"}
    assert h["limits"]["max_upload_bytes"] == int(MAX_MB * 2**20) and h["limits"]["auth"] is False
    m = client.get("/v1/model").json()
    assert m["labels"] == list(TOY_LABELS) and m["model"]["name"] == "toy"
    assert m["card"].startswith("# Toy model")
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/analyze", "/v1/health", "/v1/model"} <= set(spec["paths"])


# -- predict / analyze --------------------------------------------------------------------------
def test_predict_multipart_and_raw_body_agree(client, speech_file):
    data = speech_file.read_bytes()
    a = client.post("/v1/predict", files={"file": ("speech.wav", data, "audio/wav")})
    b = client.post("/v1/predict", content=data, headers={"content-type": "audio/wav"})
    c = client.post("/v1/predict", content=data, headers={"content-type": "application/octet-stream"})
    assert a.status_code == b.status_code == c.status_code == 200, a.text
    body = a.json()
    assert set(body) == {"emotion", "confidence", "uncertain", "probabilities"}
    assert body["emotion"] in TOY_LABELS and set(body["probabilities"]) == set(TOY_LABELS)
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-3
    assert body == b.json() == c.json()


def test_predict_matches_the_library(client, speech_file, toy_dir):
    expected = Predictor.load(toy_dir).predict(load(speech_file.read_bytes()))
    body = client.post("/v1/predict", files={"file": ("s.wav", speech_file.read_bytes())}).json()
    assert body["emotion"] == expected.label
    assert body["probabilities"] == pytest.approx(expected.probabilities, abs=1e-5)


def test_analyze_is_the_json_of_analysis_to_dict(client, speech_file, toy_dir):
    r = client.post("/v1/analyze", files={"file": ("speech.wav", speech_file.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    y = load(speech_file.read_bytes(), channels="split")
    expected = analyze(y, predictor=Predictor.load(toy_dir), name="speech.wav").to_dict()
    assert r.json() == json.loads(json.dumps(expected))
    seg = r.json()["segments"][0]
    assert set(seg) == {"file", "channel", "start", "end", "emotion", "confidence", "uncertain", "probabilities"}


def test_analyze_split_channels(client, stereo_file):
    r = client.post("/v1/analyze?channels=split", content=stereo_file.read_bytes(),
                    headers={"content-type": "audio/flac", "x-filename": "call.flac"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["file"] == "call.flac" and body["channels"] == ["agent", "customer"]
    assert set(body["summary"]["per_channel"]) == {"agent", "customer"}
    assert {s["channel"] for s in body["segments"]} == {"agent", "customer"}
    _error(client.post("/v1/analyze?channels=both", content=stereo_file.read_bytes(),
                       headers={"content-type": "audio/flac"}), 422, "validation_error")


def test_other_formats_via_ffmpeg(client, speech_file, tmp_path):
    import shutil
    import subprocess

    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg not installed")
    m4a = tmp_path / "speech.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(speech_file), str(m4a)], check=True)
    r = client.post("/v1/predict", files={"file": ("speech.m4a", m4a.read_bytes(), "audio/mp4")})
    assert r.status_code == 200, r.text


# -- bad input: 4xx with the error shape, never a 500 ------------------------------------------------
def test_non_speech_is_no_speech(client):
    rng = np.random.default_rng(0)
    for y in (tone(440, 2.0), (0.1 * rng.standard_normal(2 * SR)).astype(np.float32), np.zeros(2 * SR, np.float32)):
        r = client.post("/v1/predict", content=_wav_bytes(y), headers={"content-type": "audio/wav"})
        assert r.status_code == 200, r.text
        assert r.json()["emotion"] == "no_speech" and r.json()["probabilities"] == {}


def test_empty_and_corrupt_uploads(client, speech_file):
    _error(client.post("/v1/predict", content=b"", headers={"content-type": "audio/wav"}), 422, "audio_error")
    _error(client.post("/v1/predict", files={"file": ("x.wav", b"")}), 422, "audio_error")
    _error(client.post("/v1/predict", content=b"RIFF\x00\x00garbage" * 50, headers={"content-type": "audio/wav"}),
           422, "audio_error")
    truncated = speech_file.read_bytes()[:44]  # the RIFF header and no samples
    _error(client.post("/v1/analyze", content=truncated, headers={"content-type": "audio/wav"}), 422, "audio_error")
    _error(client.post("/v1/predict", files={"other": ("x.wav", b"abc")}), 422, "missing_file")
    _error(client.post("/v1/predict", files={"file": (None, "not a file")}), 422, "missing_file")


def test_truncated_upload_is_422_naming_the_file(client):
    buf = io.BytesIO()
    sf.write(buf, tone(220, 3.3), SR, format="FLAC")
    cut = buf.getvalue()[: len(buf.getvalue()) // 2]
    for route in ("/v1/predict", "/v1/analyze"):
        err = _error(client.post(route, files={"file": ("call.flac", cut, "audio/flac")}), 422, "audio_error")
        assert err["message"].startswith("call.flac: truncated: decoded") and "of 3.30 s" in err["message"]


def test_wrong_content_type_is_415(client, speech_file):
    for ctype in ("text/plain", "application/json", "image/png"):
        _error(client.post("/v1/predict", content=speech_file.read_bytes(), headers={"content-type": ctype}),
               415, "unsupported_media_type")
    _error(client.post("/v1/analyze", json={"url": "http://example.com/a.wav"}), 415, "unsupported_media_type")


def test_huge_upload_is_413_before_and_while_reading(client, server):
    big = b"\0" * int(MAX_MB * 2**20 + 10)
    _error(client.post("/v1/predict", content=big, headers={"content-type": "audio/wav"}), 413, "payload_too_large")
    _error(client.post("/v1/predict", files={"file": ("big.wav", big)}), 413, "payload_too_large")

    def chunked():  # no Content-Length: the limit must hold while streaming the body
        for _ in range(40):
            yield b"\0" * 65536

    _error(client.post("/v1/predict", content=chunked(), headers={"content-type": "audio/wav"}),
           413, "payload_too_large")
    # a lying Content-Length header is refused before a byte of the body is read
    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10) as s:
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                  b"Content-Length: 999999999\r\n\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 413")


def test_too_long_audio_is_413(client):
    y = np.zeros((MAX_DURATION + 10) * SR, dtype=np.float32)  # compresses to almost nothing
    buf = io.BytesIO()
    sf.write(buf, y, SR, format="FLAC")
    _error(client.post("/v1/predict", content=buf.getvalue(), headers={"content-type": "audio/flac"}),
           413, "audio_too_long")


def test_no_url_fetching(client):
    r = client.post("/v1/predict", content=b"http://127.0.0.1:1/a.wav", headers={"content-type": "audio/wav"})
    _error(r, 422, "audio_error")


# -- streaming ----------------------------------------------------------------------------------
def _pcm16(path: Path) -> bytes:
    y = load(path)
    return (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()


def _receive(ws) -> dict:
    return json.loads(ws.recv(timeout=30))


def test_stream_updates_every_second_and_summary(server, speech_file):
    pcm = _pcm16(speech_file)
    chunk = int(0.2 * SR) * 2  # 200 ms
    updates = []
    with ws_client.connect(f"{server.ws_url}/v1/stream") as ws:
        ready = _receive(ws)
        assert ready["type"] == "ready" and ready["sample_rate"] == SR and ready["labels"] == list(TOY_LABELS)
        for i in range(0, len(pcm), chunk):  # faster than real time
            ws.send(pcm[i : i + chunk])
        ws.send("end")
        while True:
            msg = _receive(ws)
            if msg["type"] == "summary":
                break
            assert msg["type"] == "update", msg
            updates.append(msg)
    seconds = len(pcm) / 2 / SR
    assert len(updates) == int(np.ceil(seconds))
    assert updates[0]["start"] == 0.0 and updates[-1]["end"] == pytest.approx(seconds, abs=1e-3)
    for a, b in zip(updates, updates[1:], strict=False):
        assert b["start"] == a["end"] and b["end"] - b["start"] <= 1.0 + 1e-9
    for u in updates:
        assert u["emotion"] in (*TOY_LABELS, "no_speech") and isinstance(u["probabilities"], dict)
    assert msg["duration"] == pytest.approx(seconds, abs=1e-3)
    assert len(msg["segments"]) == len(updates) and msg["summary"]["dominant_emotion"] in TOY_LABELS


def test_stream_bad_frames_get_error_messages_not_a_crash(server, speech_file, client):
    pcm = _pcm16(speech_file)
    with ws_client.connect(f"{server.ws_url}/v1/stream") as ws:
        _receive(ws)
        ws.send(b"\x01\x02\x03")  # odd byte count
        assert _receive(ws)["error"]["type"] == "bad_chunk"
        ws.send(b"")
        assert _receive(ws)["error"]["type"] == "bad_chunk"
        ws.send("what is this")
        assert _receive(ws)["error"]["type"] == "bad_message"
        ws.send(b"\0" * (6 * SR * 2))  # > 5 s in one frame
        assert _receive(ws)["error"]["type"] == "bad_chunk"
        ws.send("ping")
        assert _receive(ws) == {"type": "pong"}
        ws.send(pcm[: SR * 2])  # one second of audio still works after all that
        assert _receive(ws)["type"] == "update"
        ws.send('{"type": "end"}')
        assert _receive(ws)["type"] == "summary"
    # a client that stops mid-chunk and drops the connection
    with contextlib.suppress(Exception), ws_client.connect(f"{server.ws_url}/v1/stream") as ws:
        _receive(ws)
        ws.send(pcm[: int(0.3 * SR) * 2 + 1])
        ws.socket.shutdown(socket.SHUT_RDWR)
        ws.socket.close()
    assert client.get("/v1/health").status_code == 200
    r = client.post("/v1/predict", files={"file": ("s.wav", speech_file.read_bytes())})
    assert r.status_code == 200


# -- API key and CORS ---------------------------------------------------------------------------
def test_api_key_required_when_set(servers, speech_file):
    open_, keyed = servers
    data = speech_file.read_bytes()
    with httpx.Client(base_url=keyed.url, timeout=60) as c:
        assert c.get("/v1/health").status_code == 200  # health stays open for load balancers
        assert c.get("/v1/health").json()["limits"]["auth"] is True
        _error(c.post("/v1/predict", files={"file": ("s.wav", data)}), 401, "unauthorized")
        _error(c.post("/v1/predict", files={"file": ("s.wav", data)}, headers={"X-API-Key": "wrong"}),
               401, "unauthorized")
        _error(c.get("/v1/model"), 401, "unauthorized")
        ok = c.post("/v1/predict", files={"file": ("s.wav", data)}, headers={"X-API-Key": KEY})
        assert ok.status_code == 200
        assert c.get("/v1/model", headers={"X-API-Key": KEY}).status_code == 200
    with ws_client.connect(f"{keyed.ws_url}/v1/stream") as ws:
        assert _receive(ws)["error"]["type"] == "unauthorized"
    with ws_client.connect(f"{keyed.ws_url}/v1/stream", additional_headers={"X-API-Key": KEY}) as ws:
        assert _receive(ws)["type"] == "ready"
    with ws_client.connect(f"{keyed.ws_url}/v1/stream?api_key={KEY}") as ws:  # how a browser passes it
        assert _receive(ws)["type"] == "ready"
    with ws_client.connect(f"{keyed.ws_url}/v1/stream?api_key=wrong") as ws:
        assert _receive(ws)["error"]["type"] == "unauthorized"
    with httpx.Client(base_url=open_.url) as c:  # no key configured: no key needed
        assert c.get("/v1/model").status_code == 200


def test_cors_off_unless_configured(servers):
    open_, keyed = servers
    pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    r = httpx.options(f"{open_.url}/v1/predict", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    r = httpx.options(f"{keyed.url}/v1/predict", headers=pre)
    assert r.headers.get("access-control-allow-origin") == "https://app.example"
    r = httpx.options(f"{keyed.url}/v1/predict", headers={**pre, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


# -- timeouts with a slow model (in-process server: the test reads the predictor's counters) ----
class _SlowPredictor(Predictor):
    """The toy model, ``delay`` seconds slower per call; counts the calls running at once."""

    delay = 0.0

    def predict_many(self, clips, **kwargs):
        import time

        with _SlowPredictor._lock:
            self.running = getattr(self, "running", 0) + 1
            self.peak = max(getattr(self, "peak", 0), self.running)
        try:
            time.sleep(self.delay)
            return super().predict_many(clips, **kwargs)
        finally:
            with _SlowPredictor._lock:
                self.running -= 1

    _lock = threading.Lock()


def _wait_idle(slow, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while getattr(slow, "running", 0) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_timeouts_keep_the_concurrency_limit_and_close_the_stream(toy_dir):
    import time

    from emovox.api.app import create_app
    from emovox.api.settings import Settings

    slow = _SlowPredictor.load(toy_dir, threads=1)
    settings = Settings(model_dir=toy_dir, max_concurrency=1, request_timeout=0.5, api_key=None, cors_origins=())
    wav = _wav_bytes(tone(220, 1.0))
    with testing.running_app(create_app(settings, predictor=slow)) as url, httpx.Client(base_url=url, timeout=30) as c:
        slow.delay = 1.5
        codes = []

        def post():
            codes.append(c.post("/v1/predict", content=wav, headers={"content-type": "audio/wav"}).status_code)

        first = threading.Thread(target=post)
        first.start()
        time.sleep(0.3)  # the second request queues while the first runs; it outlives the first's 504
        second = threading.Thread(target=post)
        second.start()
        first.join()
        second.join()
        assert codes == [504, 504]
        _wait_idle(slow)
        assert slow.peak == 1  # the abandoned call kept its slot: the second never ran beside it
        slow.delay = 0.0
        assert c.post("/v1/predict", content=wav, headers={"content-type": "audio/wav"}).status_code == 200

        slow.peak, slow.delay = 0, 1.5
        pcm = (tone(220, 1.2) * 32767).astype("<i2").tobytes()
        ws_url = "ws" + url[len("http"):] + "/v1/stream"
        with ws_client.connect(ws_url) as ws:
            assert _receive(ws)["type"] == "ready"
            ws.send(pcm)
            error = _receive(ws)
            assert error["type"] == "error" and error["error"]["type"] == "timeout", error
            assert "stream is closed" in error["error"]["message"]
            with contextlib.suppress(Exception):
                ws.send(pcm)  # must not run beside the abandoned feed
            with pytest.raises(ws_exceptions.ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        _wait_idle(slow)
        assert slow.peak == 1
