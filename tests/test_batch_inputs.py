"""emovox.batch without Spark: input resolution, timestamps, the resumable store, the executor function."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from emovox.batch.inputs import is_remote, parse_timestamp, resolve_inputs
from emovox.batch.jobs import analyze_partition, to_tables
from emovox.batch.store import BatchStore
from emovox.errors import DataError
from emovox.testing import TOY_LABELS, make_toy_model

from .conftest import SR, speak, tone

SETTINGS = {"model": "toy v0", "channels": "mix", "labels": list(TOY_LABELS)}


@pytest.mark.parametrize("name, expected", [
    ("2024-03-01T14-22-05.wav", "2024-03-01T14:22:05"),
    ("agent7_2024-03-01T14:22:05_x.flac", "2024-03-01T14:22:05"),
    ("20240301_142205.wav", "2024-03-01T14:22:05"),
    ("call-20240301-142205-b.ogg", "2024-03-01T14:22:05"),
    ("calls/2024-13-01T14-22-05.wav", None),  # month 13
    ("call_42.wav", None),
    ("123456789012345.wav", None),
])
def test_parse_timestamp(name, expected):
    assert parse_timestamp(name) == expected


def test_is_remote():
    assert is_remote("hdfs://nn:8020/calls") and is_remote("s3a://bucket/calls/")
    assert not is_remote("/data/calls") and not is_remote("file:///data/calls") and not is_remote("C:/calls")


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    root = tmp_path / "calls"
    (root / "day1").mkdir(parents=True)
    sf.write(root / "day1" / "20240301_090000.wav", tone(220, 1.0), SR)
    sf.write(root / "day1" / "b.flac", tone(330, 1.0), SR)
    (root / "notes.txt").write_text("not audio")
    (root / "_tmp").mkdir()
    sf.write(root / "_tmp" / "hidden.wav", tone(110, 0.5), SR)
    return root


def test_resolve_folder_glob_file(calls: Path):
    got = resolve_inputs(calls)
    assert [Path(f).name for f, _ in got.files] == ["20240301_090000.wav", "b.flac"]
    assert got.files[0][1] == "2024-03-01T09:00:00" and got.files[1][1] is None
    assert got.uri is None
    assert [Path(f).name for f, _ in resolve_inputs(f"{calls}/**/*.flac").files] == ["b.flac"]
    assert len(resolve_inputs(calls / "day1" / "b.flac").files) == 1
    assert resolve_inputs("s3a://bucket/calls").uri == "s3a://bucket/calls"


def test_resolve_manifest(calls: Path, tmp_path: Path):
    csv = calls / "list.csv"
    csv.write_text("path,timestamp,agent\nday1/b.flac,2024-05-06 07:08:09,x\nday1/20240301_090000.wav,,y\n"
                   "day1/b.flac,,dup\nmissing.wav,,z\n")
    files = resolve_inputs(csv).files
    assert [(Path(f).name, t) for f, t in files] == [
        ("b.flac", "2024-05-06T07:08:09"), ("20240301_090000.wav", "2024-03-01T09:00:00"), ("missing.wav", None)]
    bad = calls / "bad.csv"
    bad.write_text("file,label\na.wav,happy\n")
    with pytest.raises(DataError, match="'path' column"):
        resolve_inputs(bad)
    bad.write_text("path,timestamp\na.wav,yesterday\n")
    with pytest.raises(DataError, match="not ISO 8601"):
        resolve_inputs(bad)
    with pytest.raises(DataError, match="no such file"):
        resolve_inputs(tmp_path / "nope")
    with pytest.raises(DataError, match="no audio files"):
        resolve_inputs(f"{calls}/*.mp3")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> str:
    return str(make_toy_model(tmp_path_factory.mktemp("toy")))


def _rows(toy: str, files: list[str]) -> pd.DataFrame:
    out = list(analyze_partition(iter([pd.DataFrame({"file": files})]), model_dir=toy))
    assert len(out) == 1
    return out[0]


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> str:
    return str(speak("I am calling about my invoice, it is wrong again.", tmp_path_factory.mktemp("v") / "v.wav"))


def test_analyze_partition_every_input_one_row(toy: str, calls: Path, voice: str):
    good = voice
    noisy = calls / "noise.wav"
    sf.write(noisy, np.random.default_rng(0).normal(0, 0.1, SR * 2).astype(np.float32), SR)
    broken = calls / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00not really")
    rows = _rows(toy, [good, str(noisy), str(broken), str(calls / "gone.wav")])
    assert list(rows["file"]) == [good, str(noisy), str(broken), str(calls / "gone.wav")]
    assert list(rows["ok"]) == [True, True, False, False]
    assert "broken.wav" in rows["error"].iat[2]
    doc = json.loads(rows["result"].iat[0])
    assert doc["labels"] == list(TOY_LABELS) and doc["segments"]
    assert doc["segments"][0]["file"] == good
    rows["timestamp"] = ["2024-03-01T09:00:00", None, None, None]
    tables = to_tables(rows, labels=list(TOY_LABELS))
    files, segs, errs = tables["files"].to_pandas(), tables["segments"].to_pandas(), tables["errors"].to_pandas()
    assert len(files) == 2 and len(errs) == 2
    assert set(segs["file"]) <= set(files["file"])
    assert {f"share_{lab}" for lab in TOY_LABELS} <= set(files.columns)
    assert {f"p_{lab}" for lab in TOY_LABELS} <= set(segs.columns)
    shares = files[[f"share_{lab}" for lab in TOY_LABELS]].sum(axis=1)
    assert np.allclose(shares[files["speech_seconds"] > 0], 1.0, atol=0.01)
    assert files["timestamp"].iat[0] == "2024-03-01T09:00:00"
    assert (files["status"] == "ok").all() and (errs["status"] == "error").all()


def test_store_commit_recover_roll_forward_and_back(toy: str, calls: Path, tmp_path: Path, voice: str):
    rows = _rows(toy, [voice, str(calls / "nope.wav")])
    rows["timestamp"] = ["2024-03-01T09:00:00", None]
    out = tmp_path / "out"
    store = BatchStore(str(out))
    store.open(SETTINGS)
    batch = store.commit(to_tables(rows, labels=list(TOY_LABELS)))
    assert store.batches() == [batch] and store.published(batch)
    assert len(list((out / "files" / "date=2024-03-01").glob("part-*.parquet"))) == 1
    assert list((out / "errors").glob("date=__HIVE_DEFAULT_PARTITION__/part-*.parquet"))
    assert not list((out / "_staging").iterdir())
    assert store.done() == {voice, str(calls / "nope.wav")}
    files = store.read("files")
    assert list(files["date"]) == ["2024-03-01"] and list(files["batch"]) == [batch]
    # a crash while publishing (after _READY, one data file moved): the next open finishes the moves
    again = rows.iloc[:1].assign(file=str(calls / "again.wav"))
    crashing = BatchStore(str(out))

    def killed(batch):
        raise KeyboardInterrupt("killed after _READY")

    crashing._roll_forward = killed
    with pytest.raises(KeyboardInterrupt):
        crashing.commit(to_tables(again, labels=list(TOY_LABELS)), batch="b-half")
    staged = sorted((out / "_staging" / "b-half" / "segments").rglob("part-*.parquet"))
    assert (out / "_staging" / "b-half" / "_READY").is_file() and staged
    (out / "segments" / "date=2024-03-01" / staged[0].name).write_bytes(staged[0].read_bytes())  # one moved
    staged[0].unlink()
    assert str(calls / "again.wav") not in store.done()
    BatchStore(str(out)).open(SETTINGS)
    assert "b-half" in BatchStore(str(out)).batches() and not (out / "_staging" / "b-half").exists()
    segs = BatchStore(str(out)).read("segments")
    assert (segs["batch"] == "b-half").sum() == (segs["batch"] == batch).sum() > 0  # every segment once
    # a batch staged without _READY (killed while Spark wrote it) is dropped
    (out / "_staging" / "b-dead" / "files" / "date=2024-03-02").mkdir(parents=True)
    (out / "_staging" / "b-dead" / "files" / "date=2024-03-02" / "part-0.parquet").write_bytes(b"partial")
    BatchStore(str(out)).open(SETTINGS)
    assert not (out / "_staging" / "b-dead").exists() and not (out / "files" / "date=2024-03-02").exists()
    assert sorted(BatchStore(str(out)).done()) == sorted({voice, str(calls / "nope.wav"), str(calls / "again.wav")})
    with pytest.raises(DataError, match="other settings"):
        BatchStore(str(out)).open({**SETTINGS, "channels": "split"})


def test_store_refuses_old_layout(tmp_path: Path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "part-0123.parquet").write_bytes(b"x")
    with pytest.raises(DataError, match="older"):
        BatchStore(str(tmp_path)).open(SETTINGS)


def test_split_channels_columns(toy: str, calls: Path, voice: str):
    y, sr = sf.read(voice, dtype="float32")
    stereo = calls / "stereo.wav"
    sf.write(stereo, np.stack([y, 0.5 * y[::-1]], axis=1), sr)
    rows = next(analyze_partition(iter([pd.DataFrame({"file": [str(stereo), voice]})]), model_dir=toy,
                                  channels="split"))
    assert list(rows["ok"]) == [True, False] and "one channel" in rows["error"].iat[1]
    rows["timestamp"] = None
    files = to_tables(rows, labels=list(TOY_LABELS), channel_names=("agent", "customer"))["files"].to_pandas()
    assert files["channels"].iat[0] == "agent,customer"
    assert files["agent_speech_seconds"].iat[0] > 0 and files["customer_dominant_emotion"].iat[0] in TOY_LABELS


@pytest.mark.parametrize("channels, speakers, ship, message", [
    ("split", 2, False, "--speakers needs --channels mix"),
    ("mix", 9, False, r"count 1\.\.6"),
    ("mix", 2, True, "--ship"),
])
def test_speakers_option_is_checked_before_spark(channels, speakers, ship, message):
    """``emovox batch --speakers``: a bad combination fails once, on the driver, not once per file (issue 15)."""
    from emovox.batch.runner import check_analysis_options
    from emovox.errors import ParameterError

    assert [check_analysis_options("mix", s) for s in (None, "auto", 2)] == [None, "auto", 2]
    with pytest.raises(ParameterError, match=message):
        check_analysis_options(channels, speakers, ship=ship)


def test_store_resumes_only_with_the_same_speakers(tmp_path):
    """``_batch.json`` records ``speakers`` only when set: older folders still resume without it."""
    store = BatchStore(str(tmp_path / "out"))
    store.open(SETTINGS)
    store.open(dict(SETTINGS))
    with pytest.raises(DataError, match="speakers: None -> 2"):
        store.open({**SETTINGS, "speakers": 2})
