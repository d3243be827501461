"""The named feature sets of emovox, and ``extract`` / ``feature_names`` over them.

A set name is one of :data:`FEATURE_SETS` or several joined by ``+`` (``"mfcc+pitch"``); a
combination is the concatenation of its parts, in order, each part counted once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from ..audio import SAMPLE_RATE, validate
from ..errors import ParameterError
from . import handcrafted
from .logmel import LogMelConfig, logmel

__all__ = ["FEATURE_SETS", "ONNX_ATOMS", "FeatureSet", "extract", "feature_names", "resolve", "feature_config",
           "FEATURES_VERSION"]

#: Bump when an extractor changes its values, so cached vectors are recomputed.
FEATURES_VERSION = 1

_LOGMEL = LogMelConfig()


@dataclass(frozen=True)
class FeatureSet:
    """A named feature set: the atomic groups it concatenates and the library it runs on."""

    name: str
    parts: tuple[str, ...]
    description: str


#: Frozen pretrained-encoder atoms: ``whisper_<encoder>_l<k>`` -> (encoder, layer k, width).
_WHISPER_ATOMS: dict[str, tuple[str, int, int]] = {
    f"whisper_{enc.replace('.', '_')}_l{k}": (enc, k, width)
    for enc, (blocks, width) in {"base": (4, 512), "tiny.en": (4, 384)}.items()
    for k in range(blocks + 1)
}

#: The same statistics from the shipped model's int8 ONNX graph of the encoder
#: (:mod:`.whisper.onnx_encoder`): ``whisper_<encoder>_l<k>_int8`` -> (encoder, k, width).
ONNX_ATOMS: dict[str, tuple[str, int, int]] = {"whisper_base_l3_int8": ("base", 3, 512),
                                                "whisper_tiny_en_l2_int8": ("tiny.en", 2, 384)}

_ATOM_BACKEND = {**{a: "librosa" for a in handcrafted.ATOMS}, "egemaps": "opensmile", "logmel_stats": "numpy",
                 **{a: "torch" for a in _WHISPER_ATOMS}, **{a: "onnxruntime" for a in ONNX_ATOMS}}

FEATURE_SETS: dict[str, FeatureSet] = {
    "mfcc": FeatureSet("mfcc", ("mfcc",), "40 MFCCs, mean over time (librosa)"),
    "chroma": FeatureSet("chroma", ("chroma",), "12 chroma bins of |STFT|, mean over time (librosa)"),
    "mel": FeatureSet("mel", ("mel",), "128 mel-band powers, mean over time (librosa)"),
    "zcr": FeatureSet("zcr", ("zcr",), "zero-crossing rate: mean, std, max (librosa)"),
    "rms": FeatureSet("rms", ("rms",), "RMS energy: mean, std, max (librosa)"),
    "pitch": FeatureSet("pitch", ("pitch",), "F0 of voiced frames (YIN): mean, std, min, max, range; voiced fraction"),
    "contrast": FeatureSet("contrast", ("contrast",), "spectral contrast of 6 bands, mean over time (librosa)"),
    "handcrafted": FeatureSet("handcrafted", ("mfcc", "chroma", "mel"),
                              "the source projects' 180-d MLP input: mfcc + chroma + mel"),
    "handcrafted_full": FeatureSet("handcrafted_full", tuple(handcrafted.ATOMS),
                                   "all seven hand-crafted groups"),
    "egemaps": FeatureSet("egemaps", ("egemaps",), "eGeMAPSv02 functionals, 88 values (opensmile)"),
    "logmel_stats": FeatureSet("logmel_stats", ("logmel_stats",),
                               "mean and std over time of the 64-band log-mel frontend (numpy only)"),
    **{atom: FeatureSet(atom, (atom,),
                        f"mean and std over time of frozen Whisper {enc} after "
                        f"{'its convolutional stem' if k == 0 else f'block {k}'} ({2 * w}-d; torch, "
                        "the whisper extra)")
       for atom, (enc, k, w) in _WHISPER_ATOMS.items()},
    **{atom: FeatureSet(atom, (atom,),
                        f"mean and std over time of frozen Whisper {enc} after block {k} ({2 * w}-d), through the "
                        "int8 ONNX graph and the chunking of the shipped model (onnxruntime; torch builds the graph once)")
       for atom, (enc, k, w) in ONNX_ATOMS.items()},
}


def resolve(set: str) -> list[str]:
    """The atomic groups of a set name or ``+`` combination, in order, without repeats.

    Examples
    --------
    >>> resolve("handcrafted+pitch")
    ['mfcc', 'chroma', 'mel', 'pitch']
    """
    if not isinstance(set, str) or not set.strip():
        raise ParameterError(f"feature set must be a non-empty name, got {set!r}")
    atoms: list[str] = []
    for part in set.split("+"):
        key = part.strip().lower().replace("-", "_")
        if key not in FEATURE_SETS:
            raise ParameterError(
                f"unknown feature set {part.strip()!r}; choose from {', '.join(FEATURE_SETS)} "
                "or join several with '+' (e.g. mfcc+pitch)")
        atoms += [a for a in FEATURE_SETS[key].parts if a not in atoms]
    return atoms


def _logmel_stats_names() -> list[str]:
    n = _LOGMEL.n_mels
    return [f"logmel_mean_{i:02d}" for i in range(n)] + [f"logmel_std_{i:02d}" for i in range(n)]


def _atom_names(atom: str) -> list[str]:
    if atom in handcrafted.ATOMS:
        return handcrafted.atom_names(atom)
    if atom == "egemaps":
        from .egemaps import egemaps_names

        return egemaps_names()
    if atom in _WHISPER_ATOMS:
        from .whisper.embeddings import layer_stat_names

        enc, k, width = _WHISPER_ATOMS[atom]
        return layer_stat_names(enc, k, width)
    if atom in ONNX_ATOMS:
        width = ONNX_ATOMS[atom][2]
        return [f"{atom}_{s}_{i:03d}" for s in ("mean", "std") for i in range(width)]
    return _logmel_stats_names()


def feature_names(set: str = "handcrafted") -> list[str]:
    """The value names of a feature set, one per dimension of :func:`extract`'s output.

    Examples
    --------
    >>> len(feature_names("handcrafted")), feature_names("pitch")[-1]
    (180, 'voiced_fraction')
    """
    return [n for atom in resolve(set) for n in _atom_names(atom)]


def _versions(atoms: list[str]) -> dict[str, str]:
    out = {}
    for lib in sorted({"numpy", "scipy"} | {_ATOM_BACKEND[a] for a in atoms}):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


def feature_config(set: str, *, sr: int = SAMPLE_RATE) -> dict:
    """What determines a set's values: its groups, the rate, the library versions. Cache key input."""
    atoms = resolve(set)
    cfg = {"atoms": atoms, "sr": int(sr), "version": FEATURES_VERSION, "libraries": _versions(atoms)}
    if "logmel_stats" in atoms:
        cfg["logmel"] = {k: v for k, v in _LOGMEL.to_dict().items() if k != "type"}  # hash as before
    cfg["hash"] = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
    return cfg


def _logmel_stats(y: np.ndarray, sr: int) -> np.ndarray:
    if sr != _LOGMEL.sr:
        raise ParameterError(f"logmel_stats needs audio at {_LOGMEL.sr} Hz, got sr={sr}")
    lm = logmel(y, config=_LOGMEL)
    return np.concatenate([lm.mean(axis=1), lm.std(axis=1)]).astype(np.float64)


def extract(y: np.ndarray, *, set: str = "handcrafted", sr: int = SAMPLE_RATE) -> np.ndarray:
    """Utterance-level features of mono audio.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], mono float audio at ``sr``
    set : str
        A name of :data:`FEATURE_SETS` or a ``+`` combination of them.
    sr : int

    Returns
    -------
    np.ndarray [shape=(len(feature_names(set)),)], float64

    Raises
    ------
    ParameterError
        Unknown set name or a non-mono array.
    AudioError
        Empty or non-finite audio.

    Examples
    --------
    >>> extract(np.zeros(16000, dtype=np.float32), set="logmel_stats").shape
    (128,)
    """
    y = validate(np.asarray(y), name="<array>")
    if y.ndim != 1:
        raise ParameterError(f"extract takes mono audio of shape (n,), got shape {y.shape}")
    y = y.astype(np.float32, copy=False)
    atoms = resolve(set)
    hand = [a for a in atoms if a in handcrafted.ATOMS]
    parts = dict(zip(hand, handcrafted.compute(y, hand, sr=sr), strict=True)) if hand else {}
    if "egemaps" in atoms:
        from .egemaps import egemaps

        parts["egemaps"] = egemaps(y, sr=sr)
    if "logmel_stats" in atoms:
        parts["logmel_stats"] = _logmel_stats(y, sr)
    for atom in atoms:
        if atom in _WHISPER_ATOMS:
            from .whisper.embeddings import layer_stats

            if sr != SAMPLE_RATE:
                raise ParameterError(f"{atom} needs audio at {SAMPLE_RATE} Hz, got sr={sr}")
            enc, k, _ = _WHISPER_ATOMS[atom]
            parts[atom] = layer_stats(y, encoder=enc)[k].astype(np.float64)
        elif atom in ONNX_ATOMS:
            from .whisper.onnx_encoder import onnx_embedding

            if sr != SAMPLE_RATE:
                raise ParameterError(f"{atom} needs audio at {SAMPLE_RATE} Hz, got sr={sr}")
            enc, k, _ = ONNX_ATOMS[atom]
            parts[atom] = onnx_embedding(y, encoder=enc, n_blocks=k).astype(np.float64)
    return np.concatenate([parts[a] for a in atoms])
