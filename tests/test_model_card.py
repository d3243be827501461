"""The shipped model card: per-protocol figures are attached without retraining (`--card-only`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from emovox.evaluation.model_card import main  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "src" / "emovox" / "assets" / "model-tiny"


def _result(n: int, ua: float) -> dict:
    fold = {"name": "heldout-ravdess" if n == 3 else "fold1", "metrics": {"ua": ua, "wa": ua, "macro_f1": ua}}
    summary = {k: {"mean": ua, "std": 0.01, "n_folds": 1} for k in ("ua", "wa", "macro_f1")}
    return {"recipe": "crnn", "protocol": "loco" if n == 3 else f"p{n}", "protocol_number": str(n),
            "title": f"protocol {n}", "summary": summary, "folds": [fold]}


def test_card_only_adds_the_protocol_table(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copyfile(ASSETS / "model.json", model / "model.json")
    results = tmp_path / "results"
    results.mkdir()
    for n, ua in ((1, 0.5), (3, 0.3)):
        (results / f"crnn__p{n}.json").write_text(json.dumps(_result(n, ua)))
    assert main(["--card-only", "--model", str(model), "--results", str(results), "--protocol-recipe", "crnn"]) == 0
    card = (model / "card.md").read_text()
    assert "## Metrics per protocol" in card and "| 1 protocol 1 | 1 | 50.0 ± 1.0 |" in card
    assert "ravdess 30.0" in card
    assert [r["protocol_number"] for r in json.loads((model / "model.json").read_text())["metrics"]["protocols"]] == ["1", "3"]


def test_card_only_needs_a_model_dir(tmp_path, capsys):
    assert main(["--card-only", "--model", str(tmp_path)]) == 2
    assert "model.json" in capsys.readouterr().err
