"""emovox batch on Spark local[2]: a 50-file batch written by the executors, exactly once after a kill of
the driver and of a Python worker, corrupt and missing files, bytes input, the Spark feature engine. One SparkSession for the module; every test here is slow (JVM start)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from emovox.batch.runner import run_batch
from emovox.batch.store import BatchStore
from emovox.testing import make_toy_model

from .conftest import SR, speak
from .test_diarization import two_voices  # noqa: F401  (a fixture: two espeak voices in turns, mono)

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
    if len(segments):
        assert not segments.duplicated(["file", "channel", "start"]).any(), "no duplicate segment rows"
    assert not list((out / "_staging").iterdir())
    return done, errors, segments


def test_batch_50_files_and_corrupt(spark, corpus, tmp_path):
    out = tmp_path / "out"
    res = run_batch(corpus["root"], out, model=corpus["model"], files_per_part=20, spark=spark, show_progress=False)
    assert (res.inputs, res.skipped, res.ok, res.errors, res.parts) == (50, 0, N_GOOD, N_BAD, 3)
    done, errors, segments = _check_exactly_once(out, corpus["files"])
    assert sorted(Path(f).name for f in errors["file"]) == ["corrupt_a.wav", "corrupt_b.flac"]
    assert errors["error"].str.len().min() > 10
    assert done["timestamp"].notna().all() and done["timestamp"].iat[0].startswith("2024-03-")
    assert {"file", "channel", "start", "end", "emotion", "confidence", "uncertain", "probabilities",
            "batch", "date"} <= set(segments.columns)
    assert abs(res.audio_seconds - done["duration"].sum()) < 1e-6 and res.audio_hours_per_minute > 0
    # written by the executors as Hive partitions: date=YYYY-MM-DD, one batch id per Spark plan
    assert (done["date"] == done["timestamp"].str[:10]).all() and done["batch"].nunique() == 3
    assert len(list((out / "files").glob("date=2024-03-*/part-*.parquet"))) >= 28
    assert spark.read.parquet(str(out / "files")).count() == N_GOOD
    # a re-run finds nothing to do (the anti-join leaves no input)
    again = run_batch(corpus["root"], out, model=corpus["model"], spark=spark, show_progress=False)
    assert (again.skipped, again.ok, again.errors, again.parts) == (50, 0, 0, 0)
    # the same analysis as the one-file path (nothing re-implemented)
    from emovox.inference import Predictor, analyze

    one = done["file"].iat[0]
    local = analyze(one, predictor=Predictor.load(corpus["model"]))
    mine = segments[segments["file"] == one].sort_values("start")
    assert [s["emotion"] for s in local.segments] == list(mine["emotion"])


def test_batch_bytes_manifest_missing_file(spark, corpus, tmp_path):
    """Read as bytes (binaryFile); a manifest path that does not exist fails alone (issue 13 item 5)."""
    picks = corpus["files"][:5] + [str(tmp_path / "gone.wav")]
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,timestamp\n" + "".join(f"{p},2023-12-0{k + 1}T10:00:00\n" for k, p in enumerate(picks)))
    out = tmp_path / "out"
    res = run_batch(manifest, out, model=corpus["model"], read="bytes", spark=spark, show_progress=False)
    assert res.ok + res.errors == 6 and res.parts == 1
    done, errors, _ = _check_exactly_once(out, picks)
    assert "no such file" in errors.set_index("file").loc[picks[-1], "error"]
    stamps = sorted(list(done.get("timestamp", [])) + list(errors.get("timestamp", [])))
    assert stamps == [f"2023-12-0{k + 1}T10:00:00" for k in range(6)]


def _cli(out: Path, source: str, model: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "emovox", "batch", source, "--out", str(out), "--model", model, *extra]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)


def _session_procs(sid: int) -> list[tuple[int, int, str]]:
    """(pid, ppid, cmdline) of the processes in session ``sid``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == sid:
                found.append((int(d.name), int(fields[1]), (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (OSError, ValueError):
            continue
    return found


def test_exactly_once_after_driver_kill(spark, corpus, tmp_path):
    """SIGKILL of the driver (its JVM and Python workers) after one batch is published and while the
    next is being written; the re-run recovers, skips what was published, and ends exactly once."""
    out = tmp_path / "out"
    pattern = f"{corpus['root']}/call_[0-2]*.wav"  # 30 files in batches of 6
    files = [f for f in corpus["files"] if Path(f).name[:6] in ("call_0", "call_1", "call_2")]
    proc = _cli(out, pattern, corpus["model"], "--master", "local[1]", "--files-per-part", "6")
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "_batches").is_dir() and any((out / "_batches").iterdir()):
                break
            time.sleep(0.1)
        assert proc.poll() is None, f"the batch ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its JVM and the Python workers
        proc.wait()
    first = BatchStore(str(out)).done()
    assert 0 < len(first) < len(files)
    res = run_batch(pattern, out, model=corpus["model"], spark=spark, show_progress=False)
    assert res.skipped >= len(first) and res.ok + res.errors == len(files) - res.skipped
    _check_exactly_once(out, files)


def _cpu_ticks(pid: int) -> int:
    """user + system clock ticks of ``pid`` (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


_TASK_FAILED = (b"exited unexpectedly", b"Lost task", b"Exception in task")


def test_exactly_once_after_python_worker_kill(corpus, tmp_path):
    """SIGKILL of a Python worker mid-task: Spark retries the task (local[2,4]: 4 attempts), the
    killed attempt's output is never committed, and the run ends exactly once.

    Only a worker that is burning CPU is killed (an idle pooled worker, e.g. one left over from the
    listing job, dies without failing any task), and up to three kills are made until Spark reports
    a failed task: each kill fails at most one attempt, so no task runs out of its four."""
    out = tmp_path / "out"
    pattern = f"{corpus['root']}/call_[3-4]*.wav"
    files = [f for f in corpus["files"] if Path(f).name[:6] in ("call_3", "call_4")]
    proc = _cli(out, pattern, corpus["model"], "--master", "local[2,4]", "--partitions", "4")
    err_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: err_chunks.extend(iter(lambda: proc.stderr.read1(4096), b"")), daemon=True)
    reader.start()
    kills, last_kill, ticks = 0, 0.0, {}
    deadline = time.monotonic() + 400  # a JVM start on a loaded 2-core machine
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            failed = any(m in b"".join(err_chunks) for m in _TASK_FAILED)
            if failed or kills == 3:
                break
            procs = _session_procs(proc.pid)
            daemons = {pid for pid, _, cmd in procs if "pyspark.daemon" in cmd}
            workers = [pid for pid, ppid, cmd in procs if ppid in daemons and "pyspark.daemon" in cmd]
            now = {pid: _cpu_ticks(pid) for pid in workers}
            busy = [pid for pid in workers if pid in ticks and now[pid] > ticks[pid]]
            ticks = now
            if busy and time.monotonic() - last_kill > 3.0:  # give Spark time to report the last kill
                os.kill(busy[0], signal.SIGKILL)
                kills, last_kill = kills + 1, time.monotonic()
            time.sleep(0.05)
        assert kills, "no busy Python worker seen"
        proc.wait(timeout=400)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    err = b"".join(err_chunks)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert any(m in err for m in _TASK_FAILED), err.decode()[-2000:]
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


def test_cli_batch_speakers_label_the_channel(spark, corpus, two_voices, tmp_path, capsys):  # noqa: F811
    """``emovox batch --speakers 2``: the executors diarize a mono call through the one inference core, so
    the segment rows carry the speaker in ``channel``, as ``emovox analyze --speakers 2`` does (issue 15)."""
    from emovox.cli import main
    from emovox.inference import Predictor, analyze

    path, _ = two_voices
    out = tmp_path / "o"
    assert main(["batch", str(path), "--out", str(out), "--model", corpus["model"], "--speakers", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] == 1
    done, _, segments = _check_exactly_once(out, [str(path)])
    local = analyze(str(path), predictor=Predictor.load(corpus["model"]), speakers=2)
    assert {s["channel"] for s in local.segments} == {"speaker 1", "speaker 2"}
    mine = segments.sort_values(["start", "channel"])
    theirs = sorted(local.segments, key=lambda s: (s["start"], s["channel"]))
    assert list(zip(mine["channel"], mine["start"], mine["end"], mine["emotion"], strict=True)) == \
        [(s["channel"], s["start"], s["end"], s["emotion"]) for s in theirs]
    assert done["channels"].iat[0] == "speaker 1,speaker 2"
    assert done["anger_peak_channel"].dropna().isin(["speaker 1", "speaker 2"]).all()
    # the folder resumes only with the same --speakers; a split call has its speakers already
    assert main(["batch", str(path), "--out", str(out), "--model", corpus["model"]]) == 3
    assert "speakers: 2 -> None" in capsys.readouterr().err
    assert main(["batch", str(path), "--out", str(tmp_path / "p"), "--model", corpus["model"], "--speakers", "2",
                 "--channels", "split"]) == 2
    assert "--speakers needs --channels mix" in capsys.readouterr().err
    assert main(["batch", str(path), "--out", str(tmp_path / "p"), "--model", corpus["model"],
                 "--speakers", "9"]) == 2


def test_features_spark_matches_local(spark, corpus, tmp_path):
    """The executors write a Parquet dataset directory equal to the local engine's table (unreadable file left out)."""
    import pyarrow.parquet as pq

    from emovox.batch.features import extract_features_spark
    from emovox.corpora import Item
    from emovox.features import extract_batch
    from emovox.features.table import write_feature_table

    paths = corpus["files"][:6] + [str(corpus["root"] / "corrupt_a.wav")]
    items = [Item(p, "neutral", f"s:{k}", "test") for k, p in enumerate(paths)]
    out = tmp_path / "f.parquet"
    res = extract_features_spark(items, set="logmel_stats", out=out, cache_dir=False, partitions=3, spark=spark)
    assert res["rows"] == 6 and [p for p, _ in res["errors"]] == [paths[6]]
    assert out.is_dir() and list(out.glob("part-*.parquet"))
    assert not [p.name for p in tmp_path.iterdir() if p.name != "f.parquet"], "no temporary sibling left"
    table = pd.read_parquet(out).sort_values("path", ignore_index=True)
    local_res = extract_batch(paths, set="logmel_stats", cache_dir=False, progress=False, on_error="skip")
    assert [p for p, _ in local_res.errors] == [paths[6]]
    keep = list(range(6))
    meta = pd.DataFrame({"path": paths[:6], "label": "neutral", "speaker": [f"s:{k}" for k in keep],
                         "corpus": "test", "gender": [items[k].gender for k in keep]})
    write_feature_table(meta, pd.DataFrame(local_res.X[keep], columns=local_res.names), tmp_path / "l.parquet",
                        set="logmel_stats")
    local = pd.read_parquet(tmp_path / "l.parquet").sort_values("path", ignore_index=True)
    assert list(table.columns) == list(local.columns) == ["path", "label", "speaker", "corpus", "gender",
                                                           *local_res.names]
    assert (table.dtypes[local_res.names] == np.float64).all()
    pd.testing.assert_frame_equal(table, local, check_exact=False, rtol=1e-6, atol=1e-6)
    def types(schema) -> list:  # pandas 3 strings are Arrow large_string, Spark's Parquet strings read as string
        return [(f.name, "string" if str(f.type) == "large_string" else str(f.type)) for f in schema]

    local_types = types(pq.read_table(tmp_path / "l.parquet").schema)
    assert types(pq.read_table(out).schema) == local_types  # gender: all None, Arrow null on both
    assert types(pq.read_schema(out / "_common_metadata")) == local_types
    assert b"emovox.features" in pq.read_schema(out / "_common_metadata").metadata
    # a re-run replaces the dataset whole; a failing one (strict, unreadable file) leaves it as it was
    res = extract_features_spark(items[:2], set="logmel_stats", out=out, cache_dir=False, spark=spark)
    assert res["rows"] == 2 and len(pd.read_parquet(out)) == 2
    from emovox.errors import AudioError, DataError

    with pytest.raises(AudioError):
        extract_features_spark(items, set="logmel_stats", out=out, cache_dir=False, strict=True, spark=spark)
    with pytest.raises(DataError):
        extract_features_spark(items[6:], set="logmel_stats", out=out, cache_dir=False, spark=spark)
    assert len(pd.read_parquet(out)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet", "l.parquet"], "nothing half-written"


def test_features_cli_engine_spark(spark, corpus, tmp_path):
    from emovox.cli import main

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker\n" + "".join(f"{p},angry,s{k}\n" for k, p in enumerate(corpus["files"][:3])))
    common = ["features", "--manifest", str(manifest), "--set", "logmel_stats", "--no-cache"]
    for _ in range(2):  # the second run replaces the dataset directory
        assert main([*common, "--out", str(tmp_path / "s.parquet"), "--engine", "spark", "--partitions", "2"]) == 0
    assert main([*common, "--out", str(tmp_path / "l.parquet")]) == 0
    on_spark = pd.read_parquet(tmp_path / "s.parquet").sort_values("path", ignore_index=True)
    local = pd.read_parquet(tmp_path / "l.parquet").sort_values("path", ignore_index=True)
    pd.testing.assert_frame_equal(on_spark, local, check_exact=False, rtol=1e-6)
