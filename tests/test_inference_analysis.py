"""analyze: streaming VAD -> turns -> windows -> timeline + summary; segmentation; outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from emovox.errors import ParameterError
from emovox.inference import Predictor, analyze
from emovox.inference.outputs import write_analysis
from emovox.inference.segmentation import SegmentConfig, Segmenter, mask_to_spans, split_turn
from emovox.testing import TOY_LABELS, make_toy_model

from .conftest import SR, speak, tone

SEGMENT_KEYS = {"file", "channel", "start", "end", "emotion", "confidence", "uncertain", "probabilities"}


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> Predictor:
    return Predictor.load(make_toy_model(tmp_path_factory.mktemp("model") / "toy"), threads=1)


@pytest.fixture(scope="module")
def bursts(tmp_path_factory):
    """~3 minutes: espeak utterances separated by 2-6 s of faint noise; returns (path, truth spans)."""
    from emovox.audio import load

    tmp = tmp_path_factory.mktemp("bursts")
    texts = ["I would like to change my address please.", "That is not what I asked for at all!",
             "Thank you, that is very kind of you.", "Why does this keep happening to me?"]
    utts = [load(speak(t, tmp / f"u{i}.wav", pitch=30 + 15 * i)) for i, t in enumerate(texts)]
    rng = np.random.default_rng(1)
    parts, truth, pos = [], [], 0
    for k in range(20):
        gap = np.zeros(int(rng.uniform(2, 6) * SR), np.float32)
        u = utts[k % len(utts)]
        parts += [gap, u]
        truth.append(((pos + len(gap)) / SR, (pos + len(gap) + len(u)) / SR))
        pos += len(gap) + len(u)
    y = np.concatenate(parts + [np.zeros(SR, np.float32)])
    y += rng.normal(0, 1e-4, len(y)).astype(np.float32)
    path = tmp / "bursts.wav"
    sf.write(path, y, SR)
    return path, truth


def test_segmenter_merges_drops_and_caps():
    on, off = np.ones, np.zeros
    mask = np.concatenate([off(5), on(20), off(5), on(20), off(20), on(5), off(20)]).astype(bool)
    assert Segmenter().feed(mask) + Segmenter().flush() == [(5, 50)]  # 5-frame gap merged, blip dropped
    seg = Segmenter(SegmentConfig(max_turn=3.0))
    turns = seg.feed(np.ones(250, bool)) + seg.flush()
    assert turns == [(0, 100), (100, 200), (200, 250)]
    assert mask_to_spans(mask) == [(pytest.approx(0.15), pytest.approx(1.5))]


def test_segmenter_is_independent_of_blocking():
    rng = np.random.default_rng(0)
    mask = np.repeat(rng.random(400) < 0.5, rng.integers(1, 30, 400))
    whole = Segmenter()
    expected = whole.feed(mask) + whole.flush()
    for step in (1, 7, 33, 500):
        seg = Segmenter()
        got = [t for i in range(0, len(mask), step) for t in seg.feed(mask[i : i + step])] + seg.flush()
        assert got == expected


def test_split_turn_cells_tile_the_turn_and_windows_stay_inside():
    cells = split_turn(1000, 1000 + 7 * SR, window=3 * SR, hop=SR * 3 // 2)
    assert cells[0][0] == 1000 and cells[-1][1] == 1000 + 7 * SR
    assert all(a[1] == b[0] for a, b in zip(cells[:-1], cells[1:], strict=True))
    assert all(1000 <= w0 and w1 <= 1000 + 7 * SR and w1 - w0 == 3 * SR for _, _, w0, w1 in cells)
    assert split_turn(0, SR, window=3 * SR, hop=SR) == [(0, SR, 0, SR)]


def test_analyze_finds_the_speech_bursts(predictor, bursts):
    path, truth = bursts
    result = analyze(path, predictor=predictor, block_seconds=15)
    assert result.segments and all(set(s) == SEGMENT_KEYS for s in result.segments)
    for s in result.segments:  # every segment lies inside an utterance (0.15 s tolerance)
        assert any(a - 0.15 <= s["start"] and s["end"] <= b + 0.15 for a, b in truth), s
    covered = sum(s["end"] - s["start"] for s in result.segments)
    spoken = sum(b - a for a, b in truth)
    assert 0.8 * spoken <= covered <= 1.05 * spoken
    summary = result.summary
    assert summary["speech_seconds"] == pytest.approx(covered, abs=0.01)
    assert sum(summary["emotion_share"].values()) == pytest.approx(1.0, abs=1e-3)
    assert summary["dominant_emotion"] in TOY_LABELS
    assert 0.0 <= summary["negative_share"] <= 1.0
    assert result.duration == pytest.approx(sf.info(path).duration, abs=1e-3)
    doc = json.loads(result.to_json())
    assert doc["segments"] == result.segments and doc["summary"] == summary


def test_segments_do_not_depend_on_block_size(predictor, bursts):
    path, _ = bursts
    small = analyze(path, predictor=predictor, block_seconds=1.37)
    large = analyze(path, predictor=predictor, block_seconds=600)
    assert small.segments == large.segments
    assert small.summary == large.summary


def test_stereo_split_labels_channels(predictor, bursts):
    path, truth = bursts
    y = sf.read(path, dtype="float32")[0]
    stereo = np.stack([y, np.zeros_like(y) + np.float32(1e-4)])  # agent speaks, customer silent
    result = analyze(stereo, predictor=predictor, channels="split", channel_names=["rep", "caller"])
    assert result.channels == ["rep", "caller"]
    assert {s["channel"] for s in result.segments} == {"rep"}
    per = result.summary["per_channel"]
    assert per["caller"]["speech_seconds"] == 0 and per["caller"]["dominant_emotion"] == "no_speech"
    assert per["rep"]["speech_seconds"] == pytest.approx(result.summary["speech_seconds"])
    with pytest.raises(ParameterError, match="one channel"):
        analyze(y, predictor=predictor, channels="split")


def test_steady_tone_is_not_speech(predictor):
    y = np.concatenate([np.zeros(SR, np.float32), tone(440, 5.0), np.zeros(SR, np.float32)])
    result = analyze(y, predictor=predictor)
    assert all(s["emotion"] == "no_speech" for s in result.segments)
    assert result.summary["speech_seconds"] == 0


def test_smoothing_keeps_distributions(predictor, bursts):
    path, _ = bursts
    raw = analyze(path, predictor=predictor, smoothing=0)
    smooth = analyze(path, predictor=predictor, smoothing=2)
    assert [(s["start"], s["end"]) for s in raw.segments] == [(s["start"], s["end"]) for s in smooth.segments]
    for s in smooth.segments:
        assert sum(s["probabilities"].values()) == pytest.approx(1.0, abs=2e-3)
        assert s["emotion"] == max(s["probabilities"], key=s["probabilities"].get)


def test_outputs_in_all_formats(predictor, bursts, tmp_path):
    path, _ = bursts
    result = analyze(path, predictor=predictor)
    write_analysis(result, tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["segments"] == result.segments
    write_analysis(result, tmp_path / "t.csv")
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0].startswith("file,channel,start,end,emotion,confidence,uncertain,p_neutral")
    assert len(lines) == len(result.segments) + 1
    pq = pytest.importorskip("pyarrow.parquet")
    write_analysis(result, tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.num_rows == len(result.segments)
    assert table.column("start").to_pylist() == [s["start"] for s in result.segments]
    with pytest.raises(ParameterError):
        write_analysis(result, tmp_path / "t.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json", "t.parquet"]


def test_analysis_and_streaming_build_the_one_segment_shape(predictor):
    from emovox.inference.outputs import SEGMENT_KEYS as KEYS
    from emovox.inference.outputs import segment_record
    from emovox.inference.streaming import StreamingPredictor

    assert set(KEYS) == SEGMENT_KEYS
    rng = np.random.default_rng(0)
    y = (rng.normal(0, 0.1, 3 * SR) * np.sin(np.linspace(0, 40, 3 * SR)) ** 2).astype(np.float32)
    segments = analyze(y, predictor=predictor, smoothing=0).segments
    stream = StreamingPredictor(predictor, name="live")
    stream.feed(y)
    stream.flush()
    for s in segments + stream.segments:
        assert set(s) == SEGMENT_KEYS
        assert s == segment_record(**s)  # already in the canonical, rounded form


@pytest.mark.parametrize(("field", "value", "allowed"), [("merge_gap", -0.1, ">= 0"), ("min_speech", -1.0, ">= 0"),
                                                         ("max_turn", 0.5, "> 1.0")])
def test_segment_config_errors_name_the_field_and_the_range(field, value, allowed):
    with pytest.raises(ParameterError, match=rf"SegmentConfig\.{field} must be {allowed} seconds, got {value}"):
        SegmentConfig(**{field: value})


def test_analyze_rejects_soundfile_layout_with_the_fix(predictor):
    stereo = np.stack([tone(220, 2.0), tone(330, 2.0)], axis=1)  # soundfile's (n, channels)
    with pytest.raises(ParameterError, match=r"transpose soundfile's \(n, channels\)"):
        analyze(stereo, predictor=predictor)
    assert analyze(stereo.T, predictor=predictor, channels="split").channels == ["agent", "customer"]
