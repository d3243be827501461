"""The protocol runner (determinism, fold cache), the benchmark table and the docs section update."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.corpora import Item
from emovox.corpora.splits import speaker_folds
from emovox.evaluation.protocols import Fold, ProtocolData, carve_validation
from emovox.evaluation.recipe import validate_recipe
from emovox.evaluation.runner import evaluate_protocol, recipe_hash

SR = 16000
LABELS = ("neutral", "happy", "sad", "angry")


def _clip(label: str, speaker: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(100 * speaker + 10 * LABELS.index(label) + k)
    t = np.arange(int(0.5 * SR)) / SR
    f = {"neutral": 150, "happy": 420, "sad": 100, "angry": 260}[label] * (1 + 0.05 * speaker)
    amp = {"neutral": 0.2, "happy": 0.3, "sad": 0.05, "angry": 0.5}[label]
    return (amp * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture
def protocol(tmp_path, monkeypatch) -> ProtocolData:
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    items = []
    for s in range(6):
        for lab in LABELS:
            for k in range(2):
                path = tmp_path / f"s{s}_{lab}{k}.wav"
                sf.write(path, _clip(lab, s, k), SR)
                items.append(Item(str(path), lab, f"synth:{s}", "synth", gender="female" if s % 2 else "male"))
    folds = [Fold(sp.name, sp.train, sp.test, carve_validation(items, sp.train, seed=0), tuple(sorted(LABELS)))
             for sp in speaker_folds(items, n_folds=3, seed=0)]
    return ProtocolData("synthetic", "synthetic tones, 3 speaker folds", "7class", items, folds, True, "0")


def _recipe(**model):
    params = {"max_iter": 150, "hidden_layer_sizes": [16]}
    return validate_recipe({"name": "t", "seed": 0, "model": {"arch": "mlp", "params": params, **model},
                            "features": {"set": "logmel_stats"}})


def test_same_recipe_twice_gives_the_same_metrics(protocol):
    a = evaluate_protocol(_recipe(), protocol, progress=False, log=None).result
    b = evaluate_protocol(_recipe(), protocol, progress=False, log=None).result
    for key in ("ua", "wa", "macro_f1"):
        assert abs(a["summary"][key]["mean"] - b["summary"][key]["mean"]) <= 0.005
    assert a["summary"]["ua"]["n_folds"] == 3 and a["summary"]["ua"]["mean"] > 0.7
    assert a["pooled"]["n"] == 48  # every clip tested once


def test_result_shape_and_quick(protocol):
    run = evaluate_protocol(_recipe(), protocol, quick=True, progress=False, log=None)
    r = run.result
    assert len(r["folds"]) == 1 and r["quick"]
    fold = r["folds"][0]
    assert fold["model_bytes"] > 0 and fold["feature_ms_per_clip"] >= 0
    assert set(r["pooled"]) >= {"confusion", "roc", "per_speaker", "per_gender", "per_class"}
    assert len(run.rows) == fold["n_test"] and {"p_happy", "true", "pred", "speaker"} <= set(run.rows[0])


def test_finished_folds_are_reused(protocol, tmp_path, monkeypatch):
    out = tmp_path / "run"
    first = evaluate_protocol(_recipe(), protocol, out_dir=out, progress=False, log=None).result
    assert len(list((out / "folds").glob("*.json"))) == 3

    import emovox.evaluation.runner as runner

    def boom(*a, **k):
        raise AssertionError("a cached fold was refitted")

    monkeypatch.setattr(runner, "_run_fold", boom)
    again = evaluate_protocol(_recipe(), protocol, out_dir=out, progress=False, log=None).result
    assert again["summary"] == first["summary"]
    # a changed recipe is not served from the cache
    with pytest.raises(AssertionError, match="refitted"):
        evaluate_protocol(_recipe(params={"max_iter": 151}), protocol, out_dir=out, progress=False, log=None)


def test_folds_run_apart_are_assembled_into_the_same_result(protocol, tmp_path, monkeypatch):
    """`benchmark --folds`: two processes may share a protocol's folds; a plain run then assembles them."""
    import emovox.evaluation.runner as runner
    from emovox.errors import ParameterError

    monkeypatch.setattr(runner, "build_protocol", lambda *a, **k: protocol)
    whole = evaluate_protocol(_recipe(), protocol, progress=False, log=None).result
    out = tmp_path / "run"
    assert runner.run_folds(_recipe(), 1, ["1", "fold3"], data_dir=".", out_dir=out, progress=False,
                            log=None) == ["fold1", "fold3"]
    assert sorted(p.name for p in (out / "folds").glob("*.json")) == ["fold1.json", "fold3.json"]
    assert evaluate_protocol(_recipe(), protocol, out_dir=out, progress=False, log=None,
                             only={"fold1"}).result == {}  # fold2 is still missing
    runner.run_folds(_recipe(), 1, ["2"], data_dir=".", out_dir=out, progress=False, log=None)
    monkeypatch.setattr(runner, "_run_fold", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rerun")))
    assembled = evaluate_protocol(_recipe(), protocol, out_dir=out, progress=False, log=None).result
    assert assembled["summary"]["ua"]["n_folds"] == 3
    assert abs(assembled["summary"]["ua"]["mean"] - whole["summary"]["ua"]["mean"]) <= 0.005
    assert assembled["model_bytes"]  # measured on the protocol's first fold, whichever process ran it
    with pytest.raises(ParameterError, match="no fold 'fold9'.*fold1, fold2, fold3"):
        runner.run_folds(_recipe(), 1, ["fold9"], data_dir=".", out_dir=out, progress=False, log=None)


def test_recipe_hash_ignores_name_only():
    assert recipe_hash(_recipe()) == recipe_hash({**_recipe(), "name": "other", "description": "x"})
    assert recipe_hash(_recipe()) != recipe_hash(_recipe(), quick=True)
    assert recipe_hash(_recipe()) != recipe_hash(_recipe(smote=True))


def test_benchmark_table_and_docs_section(tmp_path, protocol):
    from emovox.cli.benchmark import format_table, update_docs_section

    r = evaluate_protocol(_recipe(), protocol, quick=True, progress=False, log=None).result
    table = format_table([r])
    assert table[0].startswith("| recipe | protocol |") and "± " in table[2] and "(quick)" in table[2]
    doc = tmp_path / "bench.md"
    doc.write_text("# B\n\n<!-- section: accuracy -->\n## Accuracy\n\nOLD TEXT\n<!-- /section: accuracy -->\n\n"
                   "<!-- section: speed -->\nkeep\n<!-- /section: speed -->\n")
    update_docs_section(doc, "accuracy", "\n".join(table))
    text = doc.read_text()
    assert "OLD TEXT" not in text and "## Accuracy" in text and "keep" in text and table[2] in text
    assert text.count("<!-- section: accuracy -->") == 1


def test_benchmark_cli_caches_runs(tmp_path, monkeypatch, capsys, protocol):
    """`emovox benchmark` on a stand-in protocol: the second invocation reads runs/benchmark."""
    import emovox.evaluation.runner as runner
    from emovox.cli import main

    recipe_file = tmp_path / "t.toml"
    recipe_file.write_text('name = "t"\n[model]\narch = "logreg"\n[features]\nset = "logmel_stats"\n')
    monkeypatch.setattr(runner, "build_protocol", lambda *a, **k: protocol)
    doc = tmp_path / "b.md"
    doc.write_text("<!-- section: accuracy -->\n## A\n<!-- /section: accuracy -->\n")
    args = ["benchmark", "--recipes", str(recipe_file), "--protocols", "1", "--runs", str(tmp_path / "runs"),
            "--docs", str(doc), "--no-progress"]
    assert main(args) == 0
    assert (tmp_path / "runs" / "t__p1" / "report.html").is_file()
    assert "emovox benchmark" in doc.read_text()
    capsys.readouterr()
    monkeypatch.setattr(runner, "_run_fold", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rerun")))
    assert main(args + ["--no-write"]) == 0
    captured = capsys.readouterr()
    assert "cached" in captured.err and "| t |" in captured.out
    saved = json.loads((tmp_path / "runs" / "t__p1" / "metrics.json").read_text())
    assert Path(saved["folds"][0]["name"]).name.startswith("fold")
    # a fresh clone has no runs/: the compact copy beside the docs rebuilds the table
    compact = json.loads((tmp_path / "results" / "t__p1.json").read_text())
    assert compact["summary"] == saved["summary"] and "pooled" not in compact
    import shutil

    shutil.rmtree(tmp_path / "runs")
    assert main(args + ["--no-write", "--cached-only"]) == 0
    assert "| t |" in capsys.readouterr().out


def test_benchmark_cached_only_lists_what_is_missing(tmp_path, monkeypatch, capsys, protocol):
    import emovox.evaluation.runner as runner
    from emovox.cli import main

    recipe_file = tmp_path / "t.toml"
    recipe_file.write_text('name = "t"\n[model]\narch = "logreg"\n[features]\nset = "logmel_stats"\n')
    monkeypatch.setattr(runner, "build_protocol", lambda *a, **k: protocol)
    base = ["benchmark", "--recipes", str(recipe_file), "--runs", str(tmp_path / "runs"), "--no-write", "--no-progress"]
    assert main(base + ["--protocols", "1", "--quick"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(runner, "_run_fold", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    assert main(base + ["--protocols", "1", "2", "--cached-only"]) == 0
    out = capsys.readouterr().out
    assert "(quick)" in out  # the quick run stands in for the missing full one
    assert "--recipes t --protocols 1`" in out and "--recipes t --protocols 2`" in out


def test_a_failed_onnx_export_is_surfaced_not_replaced_by_a_pickle_size():
    from emovox.errors import ModelError
    from emovox.evaluation.runner import _Neural

    class Unexportable:
        def save(self, directory, *, int8):
            raise RuntimeError("tracer: unsupported operator")

    backend = _Neural.__new__(_Neural)  # no audio needed to measure a size
    with pytest.raises(ModelError, match="exporting the fold model to ONNX failed.*unsupported operator"):
        backend.size(Unexportable())
