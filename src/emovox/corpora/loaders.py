"""Loaders for RAVDESS, TESS, SAVEE, CREMA-D, EmoDB and a folder-per-label layout.

Each maps the corpus's own codes onto the canonical labels; the naming rules are those of each
corpus's release (see ``../shared/data/README.md``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from ..labels import EMOTIONS
from .base import Corpus, Item, Skipped, audio_files, register

__all__ = ["load_ravdess", "load_tess", "load_savee", "load_cremad", "load_emodb", "load_folder"]

_RAVDESS_EMOTION = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                    "06": "fearful", "07": "disgust", "08": "surprised"}
_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@register("ravdess")
def load_ravdess(root: Path) -> Corpus:
    """RAVDESS speech: ``Actor_NN/03-01-EE-II-SS-RR-AA.ext`` (odd actors male)."""
    items, skipped = [], []
    for path in audio_files(root):
        m = _RAVDESS_RE.match(path.stem)
        if not m:
            skipped.append(Skipped(str(path), "name is not MM-VC-EE-II-SS-RR-AA"))
            continue
        modality, channel, emo, intensity, statement, _rep, actor = m.groups()
        if channel != "01" or emo not in _RAVDESS_EMOTION:
            skipped.append(Skipped(str(path), f"not a speech clip with a known emotion ({channel}, {emo})"))
            continue
        n = int(actor)
        items.append(Item(str(path), _RAVDESS_EMOTION[emo], f"ravdess:{n:02d}", "ravdess",
                          gender="male" if n % 2 else "female", text=f"statement{statement}",
                          intensity={"01": "normal", "02": "strong"}.get(intensity, intensity)))
    return Corpus("ravdess", str(root), items, skipped)


_TESS_EMOTION = {"angry": "angry", "disgust": "disgust", "fear": "fearful", "happy": "happy",
                 "neutral": "neutral", "ps": "surprised", "sad": "sad",
                 "pleasant_surprise": "surprised", "pleasant_surprised": "surprised"}


@register("tess")
def load_tess(root: Path) -> Corpus:
    """TESS: ``{OAF,YAF}_<emotion>/<speaker>_<word>_<emotion>.ext``; two female talkers."""
    items, skipped = [], []
    for path in audio_files(root):
        parts = path.stem.split("_")
        emo = parts[-1].lower() if len(parts) >= 3 else ""
        speaker = parts[0].upper() if parts else ""
        if speaker == "OA":  # the release's own typo: OA_bite_neutral
            speaker = "OAF"
        if speaker not in ("OAF", "YAF"):
            folder = path.parent.name.upper()[:3]
            speaker = folder if folder in ("OAF", "YAF") else ""
        if emo not in _TESS_EMOTION or not speaker:
            skipped.append(Skipped(str(path), "name is not <OAF|YAF>_<word>_<emotion>"))
            continue
        items.append(Item(str(path), _TESS_EMOTION[emo], f"tess:{speaker}", "tess", gender="female",
                          text="_".join(parts[1:-1]).lower()))
    return Corpus("tess", str(root), items, skipped)


_SAVEE_EMOTION = {"a": "angry", "d": "disgust", "f": "fearful", "h": "happy", "n": "neutral",
                  "sa": "sad", "su": "surprised"}
_SAVEE_RE = re.compile(r"^(?:(DC|JE|JK|KL)_)?(a|d|f|h|n|sa|su)(\d\d)$")


@register("savee")
def load_savee(root: Path) -> Corpus:
    """SAVEE: ``AudioData/<speaker>/<code><NN>.ext`` or flat ``<speaker>_<code><NN>.ext``; four male talkers."""
    items, skipped = [], []
    for path in audio_files(root):
        m = _SAVEE_RE.match(path.stem)
        speaker = (m.group(1) if m and m.group(1) else path.parent.name).upper() if m else ""
        if not m or speaker not in ("DC", "JE", "JK", "KL"):
            skipped.append(Skipped(str(path), "name is not [<DC|JE|JK|KL>_]<a|d|f|h|n|sa|su><NN>"))
            continue
        code, number = m.group(2), m.group(3)
        items.append(Item(str(path), _SAVEE_EMOTION[code], f"savee:{speaker}", "savee", gender="male",
                          text=f"{code}{number}"))
    return Corpus("savee", str(root), items, skipped)


_CREMA_EMOTION = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy",
                  "NEU": "neutral", "SAD": "sad"}
_CREMA_LEVEL = {"LO": "low", "MD": "medium", "HI": "high", "XX": None}
_CREMA_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def _crema_genders(root: Path) -> dict[str, str]:
    demo = root / "VideoDemographics.csv"
    if not demo.exists():
        return {}
    with demo.open(newline="") as fh:
        return {row["ActorID"]: row["Sex"].strip().lower() for row in csv.DictReader(fh)}


@register("crema-d")
def load_cremad(root: Path) -> Corpus:
    """CREMA-D: ``Audio/<actor>_<sentence>_<emotion>_<level>.ext``; sex from VideoDemographics.csv."""
    genders = _crema_genders(root)
    items, skipped = [], []
    for path in audio_files(root):
        m = _CREMA_RE.match(path.stem)
        if not m or m.group(3) not in _CREMA_EMOTION:
            skipped.append(Skipped(str(path), "name is not <actor>_<sentence>_<ANG|DIS|FEA|HAP|NEU|SAD>_<level>"))
            continue
        actor, sentence, emo, level = m.groups()
        items.append(Item(str(path), _CREMA_EMOTION[emo], f"crema-d:{actor}", "crema-d",
                          gender=genders.get(actor), text=sentence, intensity=_CREMA_LEVEL.get(level, level)))
    return Corpus("crema-d", str(root), items, skipped)


# EmoDB (Berlin): "03a01Fa.wav" = speaker 03, text a01, emotion F (Freude), version a.
_EMODB_EMOTION = {"W": "angry", "L": "calm", "E": "disgust", "A": "fearful", "F": "happy",
                  "T": "sad", "N": "neutral"}
_EMODB_FEMALE = {"08", "09", "13", "14", "16"}
_EMODB_RE = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])$")


@register("emodb")
def load_emodb(root: Path) -> Corpus:
    """EmoDB: ``<speaker><text><emotion><version>.wav`` with German emotion codes.

    W Ärger (angry), L Langeweile (boredom, mapped to ``calm``), E Ekel (disgust), A Angst
    (fearful), F Freude (happy), T Trauer (sad), N neutral.
    """
    items, skipped = [], []
    for path in audio_files(root):
        m = _EMODB_RE.match(path.stem)
        if not m:
            skipped.append(Skipped(str(path), "name is not <speaker NN><text a01-b10><W|L|E|A|F|T|N><version>"))
            continue
        speaker, text, emo, _version = m.groups()
        items.append(Item(str(path), _EMODB_EMOTION[emo], f"emodb:{speaker}", "emodb",
                          gender="female" if speaker in _EMODB_FEMALE else "male", text=text))
    return Corpus("emodb", str(root), items, skipped)


_FOLDER_ALIASES = {"fear": "fearful", "surprise": "surprised", "disgusted": "disgust",
                   "anger": "angry", "happiness": "happy", "sadness": "sad", "joy": "happy"}


@register("folder")
def load_folder(root: Path) -> Corpus:
    """Folder per label: ``<root>/<label>/*.ext``; the speaker is unknown, so each file is its own."""
    items, skipped = [], []
    for path in audio_files(root):
        raw = path.relative_to(root).parts[0].lower() if len(path.relative_to(root).parts) > 1 else ""
        label = _FOLDER_ALIASES.get(raw, raw)
        if label not in EMOTIONS:
            skipped.append(Skipped(str(path), f"folder {raw!r} is not an emotion label"))
            continue
        items.append(Item(str(path), label, f"folder:{path.stem}", "folder"))
    return Corpus("folder", str(root), items, skipped)
