"""Speaker-normalised embedding models (kind ``whisper_embed``): directory contract, predictor, analyze, streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from emovox.errors import ModelError, ParameterError
from emovox.features.normalise import neutral_means_by_group, neutral_reference
from emovox.inference import Predictor, analyze
from emovox.inference.streaming import RunningReference, StreamingPredictor
from emovox.testing import make_toy_embedding_model, make_toy_model

from .conftest import SR, speak


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    # a low min_weight: the random toy heads give every class about the same probability
    return make_toy_embedding_model(tmp_path_factory.mktemp("embed") / "toy", min_weight=0.2)


@pytest.fixture(scope="module")
def predictor(model_dir) -> Predictor:
    return Predictor.load(model_dir, threads=1)


def _noise(seconds: float, seed: int, scale: float = 0.1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, scale, int(seconds * SR)).astype(np.float32)


def _manual(predictor: Predictor, E: np.ndarray, head: str) -> np.ndarray:
    a = predictor.heads.arrays
    return ((E - a[f"{head}_mean"]) / a[f"{head}_scale"]) @ a[f"{head}_coef"].T + a[f"{head}_intercept"]


def test_directory_declares_kind_heads_and_normalisation(predictor):
    card = predictor.card
    assert card.kind == "whisper_embed" and predictor.speaker_normalised
    norm = card.normalisation
    assert (norm.min_weight, norm.iterations, norm.temperature, norm.reference_labels) == (0.2, 1, 2.0, ("neutral",))
    assert set(predictor.heads.arrays) >= {"global_coef", "speaker_coef", "global_mean", "speaker_scale"}


def test_a_classifier_model_is_not_speaker_normalised(tmp_path):
    p = Predictor.load(make_toy_model(tmp_path / "toy"), threads=1)
    assert p.heads is None and not p.speaker_normalised
    with pytest.raises(ParameterError, match="embedding model"):
        p.speaker_logits(np.zeros((3, 4)))


@pytest.mark.parametrize("change, message", [
    (lambda d: (d / "head.npz").unlink(), "head.npz"),
    (lambda d: (d / "head.npz").write_bytes(b"not npz"), "SHA-256 mismatch"),
    (lambda d: _edit(d, normalisation={"kind": "speaker"}), "normalisation must be"),
    (lambda d: _edit(d, normalisation={"kind": "neutral_reference", "min_weight": 0}), "must be > 0"),
    (lambda d: _edit(d, normalisation={"kind": "neutral_reference"}), "needs a number min_weight"),
    (lambda d: _edit(d, normalisation={"kind": "neutral_reference", "min_weight": 1, "reference_labels": ["calm"]}),
     "reference_labels \\['calm'\\] are not among the labels"),
])
def test_broken_embedding_directories_fail_loudly(tmp_path, change, message):
    d = make_toy_embedding_model(tmp_path / "toy")
    change(d)
    with pytest.raises(ModelError, match=message):
        Predictor.load(d)


def test_head_shapes_must_fit_the_labels(tmp_path):
    d = make_toy_embedding_model(tmp_path / "toy")
    meta = json.loads((d / "model.json").read_text())
    meta["labels"] = meta["labels"][:-1]
    (d / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="shapes do not fit 6 labels"):
        Predictor.load(d)


def _edit(d, **keys) -> None:
    meta = json.loads((d / "model.json").read_text())
    meta.update(keys)
    (d / "model.json").write_text(json.dumps(meta))


def test_single_clip_goes_through_the_global_head(predictor):
    y = _noise(2.0, 0)
    E = predictor.outputs(predictor.clip_windows(y))
    expected = _manual(predictor, E.mean(0, keepdims=True), "global")[0]
    p = predictor.predict(y, vad=False)
    assert p.label == predictor.labels[int(np.argmax(expected))]
    assert np.allclose(predictor.logits(predictor.clip_windows(y)).mean(0), expected, atol=1e-4)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_a_speakers_clips_are_taken_relative_to_their_neutral_reference(predictor):
    clips = [_noise(1.5 + 0.3 * i, i, scale=0.05 * (1 + i)) for i in range(4)]
    E = np.stack([predictor.outputs(predictor.clip_windows(y)).mean(0) for y in clips]).astype(np.float64)
    neutral = predictor.labels.index("neutral")
    reference = neutral_reference(E, _softmax(_manual(predictor, E, "global"))[:, neutral],
                                  lambda Z: _softmax(_manual(predictor, Z, "speaker"))[:, neutral],
                                  iterations=1, min_weight=0.2)
    assert reference is not None
    expected = _softmax(_manual(predictor, E - reference, "speaker") / 2.0)  # the speaker head's temperature
    got = predictor.predict_many(clips, vad=False, speakers=["a"] * 4)
    for p, row in zip(got, expected, strict=True):
        assert np.allclose([p.probabilities[lab] for lab in predictor.labels], row, atol=1e-4)
    # without speakers every clip is alone: the global head
    alone = predictor.predict_many(clips, vad=False)
    single = _softmax(_manual(predictor, E, "global"))
    for p, row in zip(alone, single, strict=True):
        assert np.allclose([p.probabilities[lab] for lab in predictor.labels], row, atol=1e-4)


def test_no_reference_without_enough_neutral_weight(tmp_path):
    strict = Predictor.load(make_toy_embedding_model(tmp_path / "strict", min_weight=50.0), threads=1)
    clips = [_noise(1.5, i) for i in range(4)]
    logits, head = strict.speaker_logits(np.stack([strict.outputs(strict.clip_windows(y)).mean(0) for y in clips]))
    assert head == "global"


def test_neutral_means_subtract_each_speakers_neutral_clips():
    X = np.array([[1.0, 0.0], [3.0, 2.0], [10.0, 1.0], [14.0, 5.0], [7.0, 7.0]])
    Z = neutral_means_by_group(X, ["a", "a", "b", "b", "c"], ["neutral", "angry", "calm", "sad", "sad"])
    assert Z.tolist() == [[0.0, 0.0], [2.0, 2.0], [0.0, 0.0], [4.0, 4.0], [0.0, 0.0]]


def test_speakers_must_name_every_clip(predictor):
    with pytest.raises(ParameterError, match="2 names for 3 clips"):
        predictor.predict_many([_noise(1, 0)] * 3, speakers=["a", "b"])


def test_running_reference_is_the_weighted_mean():
    rng = np.random.default_rng(0)
    X, w = rng.normal(size=(50, 7)), rng.uniform(size=50)
    ref = RunningReference()
    assert ref.mean() is None
    for x, wi in zip(X, w, strict=True):
        ref.add(x, wi)
    assert ref.count == 50 and np.isclose(ref.weight, w.sum()) and np.allclose(ref.mean(), w @ X / w.sum())


@pytest.fixture(scope="module")
def call(tmp_path_factory):
    """A mono call: six espeak turns separated by pauses."""
    from emovox.audio import load

    tmp = tmp_path_factory.mktemp("call")
    texts = ["I would like to change my address please.", "That is not what I asked for at all!",
             "Thank you, that is very kind of you.", "Why does this keep happening to me?",
             "Could you repeat the reference number?", "Fine, I will wait for the letter."]
    parts = []
    for i, t in enumerate(texts):
        parts += [np.zeros(int(1.5 * SR), np.float32), load(speak(t, tmp / f"u{i}.wav", pitch=40 + 5 * i))]
    y = np.concatenate(parts + [np.zeros(SR, np.float32)])
    y += np.random.default_rng(1).normal(0, 1e-4, len(y)).astype(np.float32)
    path = tmp / "call.wav"
    sf.write(path, y, SR)
    return path, y


def test_analyze_decides_a_channel_with_its_own_statistics(predictor, call):
    path, _ = call
    result = analyze(path, predictor=predictor, smoothing=0)
    speech = [s for s in result.segments if s["emotion"] != "no_speech"]
    assert len(speech) >= 3
    assert result.model["heads"] == {"mix": "speaker"}
    # the same cells' embeddings, referenced together, give mostly the same emotions
    from emovox.audio import load

    y = load(path)
    E = np.stack([predictor.outputs([predictor.logmel(y[int(round(s["start"] * SR)) : int(round(s["end"] * SR))])])[0]
                  for s in speech])
    # cells inside a turn are predicted from a window centred on them, so compare the decisions loosely:
    # most cells agree with the manual standardisation of cell-sized windows
    logits, head = predictor.speaker_logits(E)
    agree = np.mean([predictor.labels[int(np.argmax(z))] == s["emotion"] for z, s in zip(logits, speech, strict=True)])
    assert head == "speaker" and agree >= 0.5
    # the result does not depend on the streaming block size
    again = analyze(path, predictor=predictor, smoothing=0, block_seconds=7.0)
    assert [s["emotion"] for s in again.segments] == [s["emotion"] for s in result.segments]


def test_analyze_falls_back_to_the_global_head_for_a_short_recording(predictor, tmp_path):
    from emovox.audio import load

    y = load(speak("Hello there.", tmp_path / "hi.wav"))
    result = analyze(np.concatenate([np.zeros(SR // 2, np.float32), y]), predictor=predictor, smoothing=0)
    assert result.model["heads"] == {"mix": "global"}
    speech = [s for s in result.segments if s["emotion"] != "no_speech"]
    assert speech and all(s["probabilities"] for s in speech)


def test_stereo_channels_are_normalised_separately(predictor, call):
    _, y = call
    quiet = np.concatenate([np.zeros(SR, np.float32), y[: 4 * SR]])[: len(y)]
    stereo = np.stack([y, np.pad(quiet, (0, len(y) - len(quiet)))])
    result = analyze(stereo, predictor=predictor, channels="split", smoothing=0)
    assert set(result.model["heads"]) == {"agent", "customer"}
    assert result.model["heads"]["agent"] == "speaker"


def test_streaming_uses_the_running_neutral_reference_once_it_has_weight(tmp_path, call):
    _, y = call
    predictor = Predictor.load(make_toy_embedding_model(tmp_path / "toy", min_weight=0.6), threads=1)
    live = StreamingPredictor(predictor, update_seconds=1.0)
    segs = []
    for i in range(0, len(y), 8000):
        segs += live.feed(y[i : i + 8000])
    segs += live.flush()
    speech = [s for s in segs if s["emotion"] != "no_speech"]
    assert live._reference.count == len(speech) >= 6
    # the first speech window has too little weight for a reference: the global head, as for a single clip
    first = speech[0]
    window = y[int(round(first["window_start"] * SR)) : int(round(first["end"] * SR))]
    assert first["probabilities"] == pytest.approx(predictor.predict(window).probabilities, abs=1e-4)
    # later ones are taken relative to the running reference: not the single-clip answer
    last = speech[-1]
    window = y[int(round(last["window_start"] * SR)) : int(round(last["end"] * SR))]
    assert last["probabilities"] != pytest.approx(predictor.predict(window).probabilities, abs=1e-3)


def test_api_analyze_reports_the_head_of_each_channel(model_dir, call):
    """The REST API serves an embedding model through the same core: /v1/analyze equals analyze()."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("fastapi")
    from emovox.api.app import create_app
    from emovox.api.settings import Settings
    from emovox.testing import running_app

    path, _ = call
    predictor = Predictor.load(model_dir, threads=1)
    settings = Settings(model_dir=str(model_dir), api_key=None, cors_origins=())
    with running_app(create_app(settings, predictor=predictor)) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/v1/analyze", files={"file": ("call.wav", path.read_bytes(), "audio/wav")})
        assert r.status_code == 200, r.text
        assert r.json()["model"]["heads"] == {"mix": "speaker"}
        expected = analyze(path.read_bytes(), predictor=predictor, name="call.wav").to_dict()
        assert r.json() == json.loads(json.dumps(expected))
        single = c.post("/v1/predict", content=path.read_bytes(), headers={"content-type": "audio/wav"})
        assert single.status_code == 200 and single.json()["emotion"] in predictor.labels
