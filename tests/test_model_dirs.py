"""The shipped models by name, and the model-directory contract of older directories."""

from __future__ import annotations

import json
import shutil

import pytest

from emovox.errors import ModelError
from emovox.inference import Predictor
from emovox.models.directory import SHIPPED_MODELS, load_card, resolve_model_dir


def test_shipped_models_resolve_by_name(tmp_path, monkeypatch):
    monkeypatch.delenv("EMOVOX_MODEL", raising=False)
    assert resolve_model_dir(None) == resolve_model_dir("default")
    assert resolve_model_dir("tiny").name == SHIPPED_MODELS["tiny"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()  # an existing folder wins over the name
    assert resolve_model_dir("tiny").resolve() == (tmp_path / "tiny").resolve()


def test_default_is_the_whisper_model_and_tiny_the_crnn():
    default, tiny = load_card("default"), load_card("tiny")
    assert default.kind == "whisper_ser" and default.windowing == "chunks"
    assert tiny.kind == "logmel_cnn" and tiny.windowing == "sliding"
    assert default.labels == tiny.labels
    assert Predictor.load("tiny").card.name == "emovox-tiny"


def test_directory_without_the_new_keys_loads_as_the_log_mel_cnn(tmp_path):
    legacy = tmp_path / "legacy"
    shutil.copytree(resolve_model_dir("tiny"), legacy)
    meta = json.loads((legacy / "model.json").read_text())
    for key in ("kind", "windowing"):
        meta.pop(key)
    meta["frontend"].pop("type")
    (legacy / "model.json").write_text(json.dumps(meta))
    card = load_card(legacy)
    assert card.kind == "logmel_cnn" and card.frontend.n_mels == 64
    meta["frontend"]["preemphasis"] = 0.97  # a key this version does not know: loud, not dropped
    (legacy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="preemphasis"):
        load_card(legacy)
