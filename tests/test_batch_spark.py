"""emovox batch on Spark local[2]: a 50-file batch, resume after a kill, corrupt files, bytes input,
the Spark feature engine. One SparkSession for the module; every test here is slow (JVM start)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from emovox.batch.runner import run_batch
from emovox.batch.store import BatchStore
from emovox.inference.toy import make_toy_model

from .conftest import SR, speak

pytest.importorskip("pyspark")
pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

N_GOOD, N_BAD = 48, 2


@pytest.fixture(scope="module")
def spark():
    from emovox.batch.spark import spark_session

    session = spark_session("local[2]", shuffle_partitions=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """48 short clips (espeak speech, tones, noise; 1-3 s) and 2 corrupt files, with timestamps in names."""
    root = tmp_path_factory.mktemp("calls")
    rng = np.random.default_rng(0)
    voices = [speak(text, root / f"v{i}.wav", pitch=20 + 15 * i)
              for i, text in enumerate(("Hello, how can I help?", "This is unacceptable!", "Thanks, bye."))]
    speech = [sf.read(v, dtype="float32") for v in voices]
    for v in voices:
        v.unlink()
    for i in range(N_GOOD):
        stamp = f"2024-03-{1 + i % 28:02d}T{8 + i % 10:02d}-{i % 60:02d}-00"
        if i % 3 == 0:
            y, sr = speech[i % len(speech)]
        else:
            t = np.arange(int(SR * (1 + i % 3))) / SR
            y = 0.2 * np.sin(2 * np.pi * (120 + 7 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            y = (y + rng.normal(0, 0.01, len(t))).astype(np.float32)
            sr = SR
        sf.write(root / f"call_{i:02d}_{stamp}.wav", y, sr)
    (root / "corrupt_a.wav").write_bytes(b"RIFF1234WAVEfmt garbage")
    (root / "corrupt_b.flac").write_bytes(os.urandom(2000))
    model = make_toy_model(tmp_path_factory.mktemp("toy"))
    return {"root": root, "model": str(model), "files": sorted(str(p) for p in root.iterdir())}


def _check_exactly_once(out: Path, files: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    store = BatchStore(str(out))
    done, errors, segments = store.read("files"), store.read("errors"), store.read("segments")
    listed = list(done.get("file", [])) + list(errors.get("file", []))
    assert sorted(listed) == sorted(files), "every input in files or errors, exactly once"
    assert set(segments.get("file", [])) <= set(done.get("file", []))
    assert not list((out / "_tmp").iterdir())
    return done, errors, segments


def test_batch_50_files_and_corrupt(spark, corpus, tmp_path):
    out = tmp_path / "out"
    res = run_batch(corpus["root"], out, model=corpus["model"], partitions=2, files_per_part=20, spark=spark,
                    show_progress=False)
    assert (res.inputs, res.skipped, res.ok, res.errors, res.parts) == (50, 0, N_GOOD, N_BAD, 3)
    done, errors, segments = _check_exactly_once(out, corpus["files"])
    assert sorted(Path(f).name for f in errors["file"]) == ["corrupt_a.wav", "corrupt_b.flac"]
    assert errors["error"].str.len().min() > 10
    assert done["timestamp"].notna().all() and done["timestamp"].iat[0].startswith("2024-03-")
    assert {"file", "channel", "start", "end", "emotion", "confidence", "uncertain", "probabilities"} <= set(segments.columns)
    assert abs(res.audio_seconds - done["duration"].sum()) < 1e-6 and res.audio_hours_per_minute > 0
    # a re-run finds nothing to do
    again = run_batch(corpus["root"], out, model=corpus["model"], spark=spark, show_progress=False)
    assert (again.skipped, again.ok, again.errors, again.parts) == (50, 0, 0, 0)
    # the same analysis as the one-file path (nothing re-implemented)
    from emovox.inference import Predictor, analyze

    one = done["file"].iat[0]
    local = analyze(one, predictor=Predictor.load(corpus["model"]))
    mine = segments[segments["file"] == one].sort_values("start")
    assert [s["emotion"] for s in local.segments] == list(mine["emotion"])


def test_batch_bytes_manifest(spark, corpus, tmp_path):
    picks = corpus["files"][:5]
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,timestamp\n" + "".join(f"{p},2023-12-0{k + 1}T10:00:00\n" for k, p in enumerate(picks)))
    out = tmp_path / "out"
    res = run_batch(manifest, out, model=corpus["model"], read="bytes", spark=spark, show_progress=False)
    assert res.ok + res.errors == 5
    done, errors, _ = _check_exactly_once(out, picks)
    stamps = sorted(list(done.get("timestamp", [])) + list(errors.get("timestamp", [])))
    assert stamps == [f"2023-12-0{k + 1}T10:00:00" for k in range(5)]


def test_resume_after_kill(spark, corpus, tmp_path):
    out = tmp_path / "out"
    pattern = f"{corpus['root']}/call_1*.wav"  # 10 files, parts of 2: the kill lands after the first part
    files = [f for f in corpus["files"] if Path(f).name.startswith("call_1")]
    cmd = [sys.executable, "-m", "emovox", "batch", pattern, "--out", str(out), "--master", "local[1]",
           "--model", corpus["model"], "--files-per-part", "2", "--partitions", "1"]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if list((out / "files").glob("part-*.parquet")) if (out / "files").is_dir() else []:
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"the batch ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its JVM and the Python workers
        proc.wait()
    first = BatchStore(str(out)).done()
    assert 0 < len(first) < len(files)
    res = run_batch(pattern, out, model=corpus["model"], spark=spark, show_progress=False)
    assert res.skipped == len(first) and res.ok + res.errors == len(files) - len(first)
    _check_exactly_once(out, files)


def test_cli_batch_json_and_errors(spark, corpus, tmp_path, capsys):
    from emovox.cli import main

    out = tmp_path / "o"
    assert main(["batch", f"{corpus['root']}/call_0[0-2]_*.wav", "--out", str(out), "--model", corpus["model"],
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] == 3 and summary["inputs"] == 3
    assert main(["batch", str(corpus["root"]), "--out", str(out), "--model", corpus["model"], "--channels", "split"]) == 3
    assert "other settings" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "none"), "--out", str(out), "--model", corpus["model"]]) == 3
    assert main(["batch", str(corpus["root"]), "--out", str(out), "--model", str(tmp_path)]) != 0


def test_features_spark_matches_local(spark, corpus, tmp_path):
    from emovox.batch.features import extract_features_spark
    from emovox.corpora import Item
    from emovox.features import extract_batch

    paths = corpus["files"][:6] + [str(corpus["root"] / "corrupt_a.wav")]
    items = [Item(p, "neutral", f"s:{k}", "test") for k, p in enumerate(paths)]
    res = extract_features_spark(items, set="logmel_stats", out=tmp_path / "f.parquet", cache_dir=False, spark=spark)
    assert res["rows"] == 6 and len(res["errors"]) == 1
    table = pd.read_parquet(tmp_path / "f.parquet")
    local = extract_batch(paths[:6], set="logmel_stats", cache_dir=False, progress=False)
    assert list(table.columns) == ["path", "label", "speaker", "corpus", "gender", *local.names]
    np.testing.assert_allclose(table[local.names].to_numpy(), local.X, rtol=1e-6)
    import pyarrow.parquet as pq

    assert b"emovox.features" in pq.read_schema(tmp_path / "f.parquet").metadata


def test_features_cli_engine_spark(spark, corpus, tmp_path):
    from emovox.cli import main

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker\n" + "".join(f"{p},angry,s{k}\n" for k, p in enumerate(corpus["files"][:3])))
    common = ["features", "--manifest", str(manifest), "--set", "logmel_stats", "--no-cache"]
    assert main([*common, "--out", str(tmp_path / "s.parquet"), "--engine", "spark", "--partitions", "2"]) == 0
    assert main([*common, "--out", str(tmp_path / "l.parquet")]) == 0
    on_spark, local = pd.read_parquet(tmp_path / "s.parquet"), pd.read_parquet(tmp_path / "l.parquet")
    pd.testing.assert_frame_equal(on_spark, local, check_exact=False, rtol=1e-6)
