"""Corpus loaders on fixtures built from each corpus's documented naming, and on the real corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

from emovox.corpora import (
    check_speaker_independent,
    discover,
    inventory,
    leave_one_corpus_out,
    load_all,
    load_corpus,
    load_fold_file,
    load_manifest,
    speaker_folds,
    write_manifest,
)
from emovox.corpora.splits import random_split
from emovox.errors import DataError, ParameterError
from emovox.labels import EMOTIONS, get_view

from .conftest import tone


def _touch(path: Path, seconds: float = 0.2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds=seconds), 16000, format="WAV")
    return path


def test_ravdess_codes(tmp_path):
    _touch(tmp_path / "Actor_01/03-01-08-02-01-01-01.wav")
    _touch(tmp_path / "Actor_12/03-01-02-01-02-02-12.wav")
    _touch(tmp_path / "Actor_12/README-not-a-clip.wav")
    c = load_corpus("ravdess", tmp_path)
    by_speaker = {i.speaker: i for i in c.items}
    a1, a12 = by_speaker["ravdess:01"], by_speaker["ravdess:12"]
    assert (a1.label, a1.gender, a1.intensity, a1.text) == ("surprised", "male", "strong", "statement01")
    assert (a12.label, a12.gender) == ("calm", "female")
    assert len(c.skipped) == 1 and "README" in c.skipped[0].path


def test_tess_codes_and_quirks(tmp_path):
    _touch(tmp_path / "OAF_Pleasant_surprise/OAF_back_ps.wav")
    _touch(tmp_path / "YAF_fear/YAF_bar_fear.wav")
    _touch(tmp_path / "OAF_neutral/OA_bite_neutral.wav")
    c = load_corpus("tess", tmp_path)
    labels = {Path(i.path).name: (i.label, i.speaker) for i in c.items}
    assert labels["OAF_back_ps.wav"] == ("surprised", "tess:OAF")
    assert labels["YAF_bar_fear.wav"] == ("fearful", "tess:YAF")
    assert labels["OA_bite_neutral.wav"] == ("neutral", "tess:OAF")
    assert not c.skipped


@pytest.mark.parametrize("layout", ["nested", "flat"])
def test_savee_both_layouts(tmp_path, layout):
    names = ["DC/a01.wav", "JE/sa03.wav", "KL/su15.wav"] if layout == "nested" else ["DC_a01.wav", "JE_sa03.wav", "KL_su15.wav"]
    root = tmp_path / "AudioData" if layout == "nested" else tmp_path
    for n in names:
        _touch(root / n)
    c = load_corpus("savee", tmp_path)
    got = sorted((i.speaker, i.label) for i in c.items)
    assert got == [("savee:DC", "angry"), ("savee:JE", "sad"), ("savee:KL", "surprised")]
    assert all(i.gender == "male" for i in c.items)


def test_cremad_codes_and_demographics(tmp_path):
    _touch(tmp_path / "Audio/1001_DFA_ANG_XX.wav")
    _touch(tmp_path / "Audio/1002_IEO_HAP_HI.wav")
    _touch(tmp_path / "Audio/1002_IEO_XYZ_HI.wav")
    (tmp_path / "VideoDemographics.csv").write_text('"ActorID","Age","Sex","Race","Ethnicity"\n1001,51,"Male","C","N"\n1002,21,"Female","C","N"\n')
    c = load_corpus("crema-d", tmp_path)
    items = {i.speaker: i for i in c.items}
    assert (items["crema-d:1001"].label, items["crema-d:1001"].gender, items["crema-d:1001"].intensity) == ("angry", "male", None)
    assert (items["crema-d:1002"].label, items["crema-d:1002"].gender, items["crema-d:1002"].intensity) == ("happy", "female", "high")
    assert len(c.skipped) == 1


def test_emodb_german_codes(tmp_path):
    # <speaker><text><emotion><version>: W Ärger, L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral
    for name in ["03a01Wa", "08b02La", "10a04Eb", "11b09Aa", "13a05Fc", "15b03Ta", "16a07Nd"]:
        _touch(tmp_path / "wav" / f"{name}.wav")
    c = load_corpus("emodb", tmp_path)
    got = {Path(i.path).stem: (i.label, i.gender) for i in c.items}
    assert got["03a01Wa"] == ("angry", "male")
    assert got["08b02La"] == ("calm", "female")
    assert got["10a04Eb"][0] == "disgust" and got["11b09Aa"][0] == "fearful"
    assert got["13a05Fc"] == ("happy", "female") and got["15b03Ta"][0] == "sad" and got["16a07Nd"][0] == "neutral"


def test_folder_per_label(tmp_path):
    _touch(tmp_path / "angry/x.wav")
    _touch(tmp_path / "Surprise/y.wav")
    _touch(tmp_path / "bored/z.wav")
    c = load_corpus("folder", tmp_path)
    assert sorted(i.label for i in c.items) == ["angry", "surprised"]
    assert len(c.skipped) == 1


def test_manifest_relative_paths_and_errors(tmp_path):
    _touch(tmp_path / "clips/a.wav")
    _touch(tmp_path / "clips/b.wav")
    (tmp_path / "m.csv").write_text("path,label,speaker,corpus\nclips/a.wav,angry,s1,mine\nclips/b.wav,Happiness,,\nclips/c.wav,sad,s2,mine\nclips/a.wav,bored,s1,mine\n")
    c = load_manifest(tmp_path / "m.csv")
    assert [(i.label, i.speaker, i.corpus) for i in c.items] == [("angry", "mine:s1", "mine"), ("happy", "manifest:b", "manifest")]
    assert sorted(s.reason for s in c.skipped) == ["file not found", "unknown label 'bored'"]
    write_manifest(c.items, tmp_path / "out.csv")
    assert len(load_manifest(tmp_path / "out.csv").items) == 2
    (tmp_path / "bad.csv").write_text("file,emotion\n")
    with pytest.raises(DataError):
        load_manifest(tmp_path / "bad.csv")


def test_unknown_corpus_and_missing_folder(tmp_path):
    with pytest.raises(ParameterError):
        load_corpus("nope", tmp_path)
    with pytest.raises(DataError):
        load_corpus("ravdess", tmp_path / "missing")


def test_label_views():
    assert get_view("8class").classes == EMOTIONS
    v7 = get_view("7class")
    assert v7.map("calm") == "neutral" and "calm" not in v7.classes
    v4 = get_view("4class")
    assert (v4.map("sad"), v4.map("angry"), v4.map("fearful")) == ("unpleasant", "unpleasant", None)
    with pytest.raises(ParameterError):
        get_view("5class")


def test_speaker_folds_and_loco_are_speaker_independent(tmp_path):
    for corpus, names in {"ravdess": [f"Actor_{a:02d}/03-01-0{e}-01-01-01-{a:02d}.wav" for a in range(1, 7) for e in (1, 5)],
                          "savee": [f"AudioData/{s}/a0{k}.wav" for s in ("DC", "JE") for k in (1, 2)]}.items():
        for n in names:
            _touch(tmp_path / corpus / n, 0.05)
    corpora = load_all(tmp_path)
    items = [i for c in corpora.values() for i in c.items]
    for split in speaker_folds(items, n_folds=3) + leave_one_corpus_out(items):
        check_speaker_independent(items, split)
        assert set(split.train).isdisjoint(split.test)
    leaky = random_split(items, test_size=0.5)
    with pytest.raises(DataError):
        check_speaker_independent(items, leaky)


@pytest.mark.corpus
def test_real_corpora_inventory(corpus_root):
    corpora = load_all(corpus_root)
    counts = {name: (len(c), len(c.speakers)) for name, c in corpora.items()}
    assert counts["ravdess"] == (1440, 24)
    assert counts["tess"] == (2800, 2)
    assert counts["savee"] == (480, 4)
    assert counts["crema-d"] == (5721, 70)
    assert all(not c.skipped for c in corpora.values())
    inv = inventory(corpora["savee"])
    assert abs(inv.hours - 0.51) < 0.02 and inv.labels["neutral"] == 120
    assert set(discover(corpus_root)) >= {"ravdess", "tess", "savee", "crema-d"}


@pytest.mark.corpus
def test_official_fold_files_are_speaker_independent(corpus_root):
    corpora = load_all(corpus_root, ["ravdess", "crema-d"])
    for corpus, fname, n in [("ravdess", "ravdess_6fold_by_actor.json", 6), ("crema-d", "crema-d_5fold_by_actor.json", 5)]:
        items = corpora[corpus].items
        folds = load_fold_file(corpus_root / "splits" / fname, items, corpus=corpus)
        assert len(folds) == n
        tested = [i for f in folds for i in f.test]
        assert sorted(tested) == list(range(len(items)))  # every clip tested exactly once
        spec = json.loads((corpus_root / "splits" / fname).read_text())
        assert len(spec["test_actors"]) == n
