"""A model directory: ``model.json`` (labels, frontend, windows, calibration), ONNX files, card.

The one reader of the directory contract (see docs/architecture.md): the exporters of this
package write and re-read directories with it, and :mod:`emovox.inference` opens them with it.
It imports the frontend configs and nothing heavier (no torch, scikit-learn or pandas).

Loading checks every ONNX file against the SHA-256 recorded in ``model.json``, so a truncated or
swapped model fails loudly (:class:`~emovox.errors.ModelError`) instead of predicting garbage.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .._numeric import sha256_file
from ..errors import ModelError, ParameterError
from ..features.logmel import LogMelConfig
from ..features.whisper.frontend import WhisperFrontendConfig

__all__ = ["ModelCard", "Frontend", "MODEL_KINDS", "EMBEDDING_KINDS", "SpeakerNormalisation", "FRONTENDS", "WINDOWING_MODES", "SHIPPED_MODELS",
           "default_model_dir", "resolve_model_dir", "is_shipped", "load_card"]

#: What ``model.json`` must hold; the rest is optional.
REQUIRED_KEYS = ("labels", "frontend", "window_seconds")

#: Model kinds this version can run, with the frontend each expects.
MODEL_KINDS = {"logmel_cnn": "logmel", "whisper_ser": "whisper_logmel", "whisper_embed": "whisper_logmel"}

#: Kinds whose ``model.onnx`` returns an ``embedding`` and whose ``head.npz`` holds the heads.
EMBEDDING_KINDS = ("whisper_embed",)

Frontend = LogMelConfig | WhisperFrontendConfig

#: Frontend types (``model.json`` ``frontend.type``) and how each is parsed.
FRONTENDS: dict[str, type[LogMelConfig] | type[WhisperFrontendConfig]] = {
    "logmel": LogMelConfig, "whisper_logmel": WhisperFrontendConfig}

#: How a model covers audio: ``sliding`` -- fixed windows cut from one log-mel of the clip
#: (tiled when shorter); ``chunks`` -- the clip split into equal chunks of at most
#: ``window_seconds``, each through the frontend on its own.
WINDOWING_MODES = ("sliding", "chunks")


#: The models shipped inside the package, by the name a user may give instead of a directory.
SHIPPED_MODELS = {"default": "model", "tiny": "model-tiny"}

_ASSETS = Path(__file__).resolve().parent.parent / "assets"


def resolve_model_dir(model: str | os.PathLike | None = None) -> Path:
    """A model directory from a path or a shipped model's name (``default``, ``tiny``).

    None means ``$EMOVOX_MODEL`` if set, else the shipped default. An existing directory wins over
    a name, so a folder called ``tiny`` in the working directory is still a path.
    """
    if model is None:
        model = os.environ.get("EMOVOX_MODEL") or "default"
    path = Path(model)
    if not path.is_dir() and str(model) in SHIPPED_MODELS:
        return _ASSETS / SHIPPED_MODELS[str(model)]
    return path


def default_model_dir() -> Path:
    """The shipped model: ``src/emovox/assets/model/`` (``$EMOVOX_MODEL`` overrides it)."""
    return resolve_model_dir(None)


def is_shipped(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` is one of the models shipped inside the package (never rewritten in place)."""
    directory = Path(directory)
    return any(directory.resolve() == (_ASSETS / sub).resolve() for sub in SHIPPED_MODELS.values())


@dataclass(frozen=True)
class SpeakerNormalisation:
    """``model.json``'s ``normalisation`` of an embedding model: a speaker relative to their neutral voice.

    A speaker's segments (a channel, a diarized speaker, a stream) weigh into the speaker's reference
    by their global-head probability of a ``reference_labels`` class, re-weighed ``iterations`` times
    by the speaker head (:func:`emovox.features.normalise.neutral_reference`). With a total weight of
    at least ``min_weight`` each embedding minus the reference goes through the speaker head, whose
    probabilities are ``softmax(logits / temperature)``; otherwise (a single clip, no neutral-sounding
    speech) through the global head.
    """

    min_weight: float
    iterations: int = 1
    temperature: float = 1.0
    reference_labels: tuple[str, ...] = ("neutral",)


@dataclass(frozen=True)
class ModelCard:
    """The parsed ``model.json`` of a model directory.

    Attributes
    ----------
    directory : Path
    labels : tuple of str
        Class names in the order of the model's ``logits`` output.
    kind : str
        One of :data:`MODEL_KINDS`.
    frontend : LogMelConfig or WhisperFrontendConfig
    windowing : str
        One of :data:`WINDOWING_MODES`.
    window_seconds, hop_seconds : float
        The model sees windows of ``window_seconds``; a clip is covered with this hop.
    temperature : float
        Calibration temperature: probabilities are ``softmax(logits / temperature)``.
    raw : dict
        Everything ``model.json`` holds (metrics, training, calibration, ...).
    """

    directory: Path
    labels: tuple[str, ...]
    frontend: Frontend
    window_seconds: float
    hop_seconds: float
    temperature: float = 1.0
    normalisation: SpeakerNormalisation | None = None
    kind: str = "logmel_cnn"
    windowing: str = "sliding"
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return str(self.raw.get("name", self.directory.name))

    @property
    def version(self) -> str:
        return str(self.raw.get("version", "?"))

    def onnx_path(self, *, int8: bool = False) -> Path:
        """Path of ``model.onnx`` (or ``model.int8.onnx``), checked to exist."""
        # a model shipped as int8 only (the Whisper model) answers an int8 request with model.onnx
        already_int8 = str(self.raw.get("quantisation", "")).startswith("int8")
        path = self.directory / ("model.int8.onnx" if int8 and not already_int8 else "model.onnx")
        if not path.is_file():
            hint = " (export one with: emovox export --model DIR --onnx --int8)" if int8 else ""
            raise ModelError(f"{path}: model file not found{hint}")
        return path

    def verify(self, path: Path) -> None:
        """Check ``path`` against the SHA-256 in ``model.json``; ModelError on mismatch.

        A file without a recorded hash passes, except in the shipped model, where a missing
        hash is itself an error.
        """
        expected = (self.raw.get("sha256") or {}).get(path.name)
        if expected is None:
            if is_shipped(self.directory):
                raise ModelError(f"{path}: the shipped model.json records no sha256 for it")
            return
        actual = sha256_file(path)
        if actual.lower() != str(expected).lower():
            raise ModelError(
                f"{path}: SHA-256 mismatch (expected {str(expected)[:12]}…, got {actual[:12]}…); "
                "the file is corrupt or does not belong to this model.json — reinstall emovox "
                "or re-export the model"
            )

    def card_text(self) -> str:
        """The model card (``card.md``), or an empty string if the directory has none."""
        path = self.directory / "card.md"
        return path.read_text(encoding="utf-8") if path.is_file() else ""


def load_card(model_dir: str | os.PathLike | None = None) -> ModelCard:
    """Read and validate ``model.json`` of ``model_dir`` (a path, ``default``/``tiny``, or None: the shipped model).

    Raises
    ------
    ModelError
        Missing directory or ``model.json``, invalid JSON, or missing required keys.
    """
    directory = resolve_model_dir(model_dir)
    meta_path = directory / "model.json"
    if not directory.is_dir():
        raise ModelError(f"{directory}: model directory not found")
    if not meta_path.is_file():
        raise ModelError(f"{meta_path}: not found; a model directory needs model.json and model.onnx")
    try:
        raw = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{meta_path}: unreadable ({exc})") from None
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise ModelError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    labels = tuple(str(x) for x in raw["labels"])
    if len(labels) < 2:
        raise ModelError(f"{meta_path}: needs at least two labels, got {list(labels)}")
    kind, frontend, windowing = _parse_model_shape(raw, meta_path)
    window = float(raw["window_seconds"])
    hop = float(raw.get("hop_seconds") or window / 2)
    temperature = float(raw.get("temperature") or 1.0)
    if window <= 0 or hop <= 0 or temperature <= 0:
        raise ModelError(f"{meta_path}: window_seconds, hop_seconds and temperature must be > 0")
    return ModelCard(
        directory=directory,
        labels=labels,
        frontend=frontend,
        kind=kind,
        windowing=windowing,
        window_seconds=window,
        hop_seconds=hop,
        temperature=temperature,
        normalisation=_parse_normalisation(raw, kind, labels, meta_path),
        raw=raw,
    )


def _parse_normalisation(raw: dict, kind: str, labels: tuple[str, ...], meta_path: Path) -> SpeakerNormalisation | None:
    """The speaker normalisation of an embedding model (None: the model has none)."""
    norm = raw.get("normalisation")
    if norm is None or kind not in EMBEDDING_KINDS:
        return None
    if not isinstance(norm, dict) or norm.get("kind") != "neutral_reference":
        raise ModelError(f"{meta_path}: normalisation must be {{\"kind\": \"neutral_reference\", ...}}, got {norm!r}")
    try:
        out = SpeakerNormalisation(min_weight=float(norm["min_weight"]), iterations=int(norm.get("iterations", 1)),
                                   temperature=float(norm.get("temperature") or 1.0),
                                   reference_labels=tuple(str(x) for x in norm.get("reference_labels", ["neutral"])))
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{meta_path}: normalisation needs a number min_weight, got {norm!r}") from None
    if out.min_weight <= 0 or out.iterations < 0 or out.temperature <= 0:
        raise ModelError(f"{meta_path}: normalisation min_weight and temperature must be > 0, iterations >= 0")
    unknown = [x for x in out.reference_labels if x not in labels]
    if unknown or not out.reference_labels:
        raise ModelError(f"{meta_path}: normalisation reference_labels {unknown or '[]'} are not among the labels")
    return out


def _parse_model_shape(raw: dict, meta_path: Path) -> tuple[str, Frontend, str]:
    """``kind``, typed frontend and windowing of a ``model.json``; ModelError naming what is unknown.

    A directory written before these keys existed (no ``kind``, an untyped frontend) is the
    log-mel CNN with sliding windows; any other omission or unknown value fails loudly, so a
    model is never run through a frontend it was not trained with.
    """
    kind = str(raw.get("kind", "logmel_cnn"))
    if kind not in MODEL_KINDS:
        raise ModelError(f"{meta_path}: unknown model kind {kind!r}; this emovox runs "
                         f"{', '.join(MODEL_KINDS)} (upgrade emovox for newer kinds)")
    fe = raw["frontend"]
    if not isinstance(fe, dict):
        raise ModelError(f"{meta_path}: frontend must be an object, got {type(fe).__name__}")
    fe_type = str(fe.get("type", "logmel" if "kind" not in raw else ""))
    if fe_type not in FRONTENDS:
        raise ModelError(f"{meta_path}: unknown frontend type {fe_type!r}; known: {', '.join(FRONTENDS)}")
    if MODEL_KINDS[kind] != fe_type:
        raise ModelError(f"{meta_path}: a {kind} model needs the {MODEL_KINDS[kind]} frontend, not {fe_type}")
    try:
        frontend = FRONTENDS[fe_type].from_dict({k: v for k, v in fe.items() if k != "type"})
    except (ParameterError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: frontend: {exc}") from None
    windowing = str(raw.get("windowing", "sliding" if kind == "logmel_cnn" else ""))
    if windowing not in WINDOWING_MODES:
        raise ModelError(f"{meta_path}: unknown windowing {windowing!r}; known: {', '.join(WINDOWING_MODES)}")
    return kind, frontend, windowing
