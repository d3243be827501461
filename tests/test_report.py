"""emovox report: per-clip statistics, the dataset report and the call-level report (no Spark)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import emovox.batch.report_data as rd
from emovox.batch.jobs import analyze_partition, to_tables
from emovox.batch.report_batch import batch_report
from emovox.batch.report_data import collect_items, dataset_report
from emovox.batch.stats import STAT_COLUMNS, clip_stats, yin_f0
from emovox.batch.store import BatchStore
from emovox.cli import main
from emovox.testing import TOY_LABELS, make_toy_model

from .conftest import SR, speak, tone


@pytest.mark.parametrize("freq", [90.0, 150.0, 220.0, 440.0])
def test_yin_tone(freq):
    f0 = yin_f0(tone(freq, 1.0))
    assert abs(np.nanmedian(f0) / freq - 1) < 0.03
    assert np.isfinite(f0).mean() > 0.9


def test_yin_silence_and_noise():
    assert not np.isfinite(yin_f0(np.zeros(SR, np.float32))).any()
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    assert np.isfinite(yin_f0(noise)).mean() < 0.2


def test_clip_stats():
    y = tone(200, 2.0, amp=0.5)
    s = clip_stats(y)
    assert list(s) == list(STAT_COLUMNS)
    assert s["duration"] == 2.0
    assert abs(s["peak"] - 0.5) < 1e-3 and abs(s["rms_db"] - 20 * np.log10(0.5 / np.sqrt(2))) < 0.1
    assert abs(s["f0_median"] - 200) < 5
    empty = clip_stats(np.zeros(0, np.float32))
    assert empty["duration"] == 0 and np.isnan(empty["f0_median"])


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """A folder per label: tones of different pitch and loudness, one spoken clip, one corrupt file."""
    root = tmp_path / "data"
    for k, (label, freq, amp) in enumerate((("angry", 260, 0.6), ("happy", 240, 0.4), ("sad", 140, 0.1),
                                            ("neutral", 120, 0.2))):
        (root / label).mkdir(parents=True)
        for i in range(3):
            sf.write(root / label / f"c{i}.wav", tone(freq + 10 * i, 1.0 + 0.25 * i, amp=amp), SR)
        if k == 0:
            speak("I am very angry about this.", root / label / "spoken.wav")
    (root / "sad" / "broken.wav").write_bytes(b"not audio at all")
    return root


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_dataset_report_folder(labelled: Path, tmp_path: Path, monkeypatch):
    items = collect_items(data=labelled)
    assert len(items) == 14
    cache = tmp_path / "cache.parquet"
    res = dataset_report(items, tmp_path / "out" / "report.html", cache=cache, show_progress=False)
    assert res["clips"] == 13 and res["errors"] == 1
    html = res["html"].read_text()
    pngs = _images(html)
    assert len(pngs) == 7 and all(p.startswith(b"\x89PNG") for p in pngs)
    assert "<script" not in html and "http" not in html.split("<main>", 1)[1]  # self-contained
    assert "broken.wav" in html
    csv, parquet = res["tables"]
    assert csv.name == "report.clips.csv" and parquet.name == "report.clips.parquet"
    df = pd.read_parquet(parquet)
    assert len(df) == 14 and list(pd.read_csv(csv).columns) == list(df.columns)
    for col in ("corpus", "path", "label", "speaker", "gender", "intensity", "duration", "rms_db", "peak",
                "f0_median", "f0_mean", "f0_std", "error"):
        assert col in df.columns
    angry = df[(df["label"] == "angry") & (df["path"].str.endswith("c0.wav"))].iloc[0]
    assert abs(angry["f0_median"] - 260) < 8 and abs(angry["peak"] - 0.6) < 0.01
    assert df.loc[df["path"].str.endswith("broken.wav"), "error"].iat[0]
    # second run: every readable clip comes from the cache
    calls = []
    real = rd.stats_many

    def spy(paths, **kw):
        calls.append(list(paths))
        return real(paths, **kw)

    monkeypatch.setattr(rd, "stats_many", spy)
    again = rd.clip_table(items, cache=cache, show_progress=False)
    pd.testing.assert_frame_equal(again.drop(columns="error"), df.drop(columns="error"), check_dtype=False)
    assert calls == [[str(labelled / "sad" / "broken.wav")]]  # errors are retried, the rest is cached


def test_dataset_report_manifest_sample_cli(labelled: Path, tmp_path: Path):
    manifest = tmp_path / "m.csv"
    rows = ["path,label,speaker,corpus,gender"]
    for i, p in enumerate(sorted(labelled.rglob("c*.wav"))):
        rows.append(f"{p},{p.parent.name},s{i % 3},{'a' if i % 2 else 'b'},{'female' if i % 2 else 'male'}")
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "r" / "m.html"
    assert main(["report", "--manifest", str(manifest), "--out", str(out), "--sample", "2", "--no-cache"]) == 0
    df = pd.read_csv(out.with_name("m.clips.csv"))
    assert len(df) == 4 and sorted(df["corpus"].unique()) == ["a", "b"]
    assert "random sample" in out.read_text()
    assert main(["report", "--manifest", str(manifest), "--out", str(tmp_path / "x.txt")]) == 2
    assert main(["report", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.html")]) == 3


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory) -> Path:
    """A batch output written through the same code as the Spark job (without Spark)."""
    tmp = tmp_path_factory.mktemp("batch")
    toy = make_toy_model(tmp / "toy")
    files = []
    for i, (text, stamp) in enumerate((("Hello, how can I help you today?", "2024-03-04T09-15-00"),
                                       ("This is the third time I call, I am furious!", "20240305_171500"),
                                       ("Thank you, goodbye.", "nostamp"))):
        files.append(str(speak(text, tmp / f"call{i}_{stamp}.wav", pitch=30 + 20 * i)))
    broken = tmp / "broken.wav"
    broken.write_bytes(b"nope")
    files.append(str(broken))
    rows = next(analyze_partition(iter([pd.DataFrame({"file": files})]), model_dir=str(toy)))
    from emovox.batch.inputs import parse_timestamp

    rows["timestamp"] = [parse_timestamp(f) for f in rows["file"]]
    store = BatchStore(str(tmp / "out"))
    store.open({"model": "toy", "channels": "mix"})
    store.commit(to_tables(rows.iloc[:2], labels=list(TOY_LABELS)))
    store.commit(to_tables(rows.iloc[2:], labels=list(TOY_LABELS)))
    return tmp / "out"


def test_batch_report(batch_dir: Path, tmp_path: Path):
    res = batch_report(batch_dir, tmp_path / "calls.html")
    assert res["files"] == 3 and res["errors"] == 1
    html = res["html"].read_text()
    assert len(_images(html)) >= 3
    assert "2 of 3 files have a timestamp" in html
    names = [t.name for t in res["tables"]]
    assert names == ["calls.files.csv", "calls.files.parquet", "calls.segments.csv", "calls.segments.parquet"]
    files = pd.read_parquet(tmp_path / "calls.files.parquet")
    assert sorted(files["hour"].dropna().astype(int)) == [9, 17]
    segs = pd.read_parquet(tmp_path / "calls.segments.parquet")
    assert "probabilities" not in segs.columns and "p_angry" in segs.columns


def test_report_cli_batch(batch_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "c.html"
    assert main(["report", "--batch", str(batch_dir), "--out", str(out)]) == 0
    assert out.is_file() and "c.files.csv" in capsys.readouterr().out
    assert main(["report", "--batch", str(tmp_path), "--out", str(out)]) == 3
    assert "not a batch output folder" in capsys.readouterr().err
