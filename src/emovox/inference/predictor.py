"""The predictor: audio -> windows -> log-mel (numpy) -> ONNX Runtime -> calibrated probabilities.

This is the only prediction path of emovox: the CLI, the API, the web app and the Spark jobs all
call :class:`Predictor`. It imports numpy, scipy, soundfile, webrtcvad and onnxruntime only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .._numeric import softmax
from .._threads import limit_blas_threads
from ..audio import SAMPLE_RATE, AudioSource, load, resample, validate
from ..errors import ModelError, ParameterError
from ..features.logmel import LogMelConfig, logmel
from ..features.normalise import neutral_reference
from ..features.whisper.frontend import WhisperFrontendConfig, chunk_logmels, padded_logmel
from ..features.windows import fit_length, seconds_to_frames, trim_silence, windows
from ..models.directory import EMBEDDING_KINDS, ModelCard, load_card
from .vad import FRAME_SECONDS, is_steady, speech_mask

__all__ = ["Prediction", "Predictor", "NO_SPEECH", "single_thread_blas", "Heads", "load_heads"]

NO_SPEECH = "no_speech"
_BATCH = 32


@dataclass(frozen=True)
class Prediction:
    """The emotion of one clip or segment.

    ``label`` is ``"no_speech"`` (and ``probabilities`` empty) when too little of the audio is
    speech; ``uncertain`` flags a low top probability or a small lead over the runner-up.
    """

    label: str
    probabilities: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0
    uncertain: bool = False

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable labels with their probabilities."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Heads:
    """The linear heads of an embedding model (``head.npz``): per head a scaler and a linear layer.

    ``logits = ((e - mean) / scale) @ coef.T + intercept`` with ``e`` the embedding, raw for the
    ``global`` head and standardised by its speaker's statistics for the ``speaker`` head.
    """

    arrays: dict[str, np.ndarray]

    def logits(self, E: np.ndarray, head: str) -> np.ndarray:
        a = self.arrays
        Z = (np.asarray(E, np.float32) - a[f"{head}_mean"]) / a[f"{head}_scale"]
        return (Z @ a[f"{head}_coef"].T + a[f"{head}_intercept"]).astype(np.float32)


def load_heads(card: ModelCard) -> Heads:
    """``head.npz`` of an embedding model, hash-checked and shape-checked against ``model.json``."""
    path = card.directory / "head.npz"
    if not path.is_file():
        raise ModelError(f"{path}: not found; a {card.kind} model needs head.npz beside model.onnx")
    card.verify(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k], np.float32) for k in z.files}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    n = len(card.labels)
    for head in ("global", "speaker"):
        try:
            coef, b = arrays[f"{head}_coef"], arrays[f"{head}_intercept"]
            d = arrays[f"{head}_mean"].shape
            ok = coef.shape[0] == n and b.shape == (n,) and d == arrays[f"{head}_scale"].shape == (coef.shape[1],)
        except KeyError as exc:
            raise ModelError(f"{path}: lacks {exc.args[0]}") from None
        if not ok:
            raise ModelError(f"{path}: the {head} head's shapes do not fit {n} labels")
    return Heads(arrays)


def single_thread_blas() -> contextlib.AbstractContextManager:
    """Limit numpy's BLAS to one thread, once for the whole process; returns a no-op context.

    The limit is process-wide and set once (:func:`emovox._threads.limit_blas_threads`), not
    saved and restored per call: overlapping calls from API worker threads would otherwise
    restore each other's saved counts and leave an arbitrary one. Kept as a context manager so
    ``with single_thread_blas():`` marks the numeric code that wants it.
    """
    limit_blas_threads()
    return contextlib.nullcontext()


class Predictor:
    """An ONNX model directory ready to predict; build it with :meth:`load`.

    A clip is trimmed of leading and trailing silence, turned into a log-mel, cut into windows
    of ``window_frames`` every ``hop_frames`` (short clips tiled), and the windows' logits are
    averaged -- the same path as training (:mod:`emovox.features.windows`).

    Parameters
    ----------
    card : ModelCard
    session : onnxruntime.InferenceSession
    min_speech_ratio, min_speech_seconds : float
        Clips with less speech (VAD) give ``"no_speech"``.
    min_confidence, min_margin : float
        Below either, a prediction is flagged ``uncertain``.
    vad_aggressiveness : int, 0..3

    Examples
    --------
    >>> p = Predictor.load()                                    # doctest: +SKIP
    >>> p.predict("call.wav").label                             # doctest: +SKIP
    'neutral'
    """

    def __init__(self, card: ModelCard, session, *, min_speech_ratio: float = 0.1,
                 min_speech_seconds: float = 0.3, min_confidence: float = 0.5,
                 min_margin: float = 0.1, vad_aggressiveness: int = 2):
        self.card = card
        self.session = session
        self.min_speech_ratio = float(min_speech_ratio)
        self.min_speech_seconds = float(min_speech_seconds)
        self.min_confidence = float(min_confidence)
        self.min_margin = float(min_margin)
        self.vad_aggressiveness = vad_aggressiveness
        self._input = session.get_inputs()[0].name
        fe = card.frontend
        self.window_samples = int(round(card.window_seconds * SAMPLE_RATE))
        self.hop_samples = int(round(card.hop_seconds * SAMPLE_RATE))
        self.window_frames = int(card.raw.get("window_frames")
                                 or seconds_to_frames(card.window_seconds, sr=fe.sr, hop_length=fe.hop_length))
        # hop in frames = frames of the hop's samples minus the centred frame
        self.hop_frames = int(card.raw.get("hop_frames")
                              or seconds_to_frames(card.hop_seconds, sr=fe.sr, hop_length=fe.hop_length) - 1)
        #: An embedding model (kind ``whisper_embed``): model.onnx returns embeddings, heads map them to logits.
        self.heads: Heads | None = load_heads(card) if card.kind in EMBEDDING_KINDS else None
        # Chunked models (the Whisper encoder) see each chunk whole, through its own frontend.
        self.chunked = card.windowing == "chunks"
        #: Shortest chunk given to a chunked model: shorter audio is padded with silence.
        self.min_chunk_samples = int(round(float(card.raw.get("min_chunk_seconds", 0.25)) * SAMPLE_RATE))

    @classmethod
    def load(cls, model_dir: str | os.PathLike | None = None, *, int8: bool = False,
             threads: int | None = None, **thresholds) -> Predictor:
        """Open a model directory (None: the shipped model) after checking its SHA-256.

        Parameters
        ----------
        model_dir : path or None
        int8 : bool
            Use ``model.int8.onnx`` (smaller, faster on CPU, slightly less accurate).
        threads : int or None
            ONNX Runtime intra-op threads (None: one per core).
        **thresholds
            ``min_speech_ratio``, ``min_speech_seconds``, ``min_confidence``, ``min_margin``,
            ``vad_aggressiveness``.

        Raises
        ------
        ModelError
            Missing or corrupt files, SHA-256 mismatch, or a graph that does not fit model.json.
        """
        import onnxruntime as ort

        if threads is not None and int(threads) < 1:
            raise ParameterError(f"threads must be >= 1, got {threads}")
        card = load_card(model_dir)
        path = card.onnx_path(int8=int8)
        card.verify(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or 0)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0][:160]})") from None
        outputs = session.get_outputs()
        n_out = outputs[0].shape[-1] if outputs and outputs[0].shape else None
        if isinstance(n_out, int) and n_out != len(card.labels) and card.kind not in EMBEDDING_KINDS:
            raise ModelError(f"{path}: model has {n_out} outputs but model.json lists {len(card.labels)} labels")
        return cls(card, session, **thresholds)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    # -- numeric core -------------------------------------------------------------------------
    def logmel(self, y: np.ndarray) -> np.ndarray:
        """Log-mel of 16 kHz audio with the model's frontend: ``[n]`` -> ``[n_mels, frames]``."""
        fe = self.card.frontend
        if isinstance(fe, LogMelConfig):
            return logmel(y, config=fe)
        return padded_logmel(y, min_samples=self.min_chunk_samples, config=fe)

    def clip_windows(self, y: np.ndarray) -> list[np.ndarray]:
        """Model inputs of a whole clip, each ``[n_mels, frames]``.

        ``sliding`` models: windows of ``window_frames`` cut from the clip's log-mel (tiled when
        shorter). ``chunks`` models: the clip split into equal chunks of at most
        ``window_seconds``, each through the frontend on its own, as in training.
        """
        if not self.chunked:
            return list(windows(self.logmel(y), window=self.window_frames, hop=self.hop_frames))
        fe = self.card.frontend
        assert isinstance(fe, WhisperFrontendConfig)  # load_card pairs chunked kinds with whisper_logmel
        return chunk_logmels(y, chunk_samples=self.window_samples, min_samples=self.min_chunk_samples, config=fe)

    def window_inputs(self, y: np.ndarray, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """One model input per ``(start, end)`` sample span of ``y`` (a speech turn).

        ``sliding`` models slice one log-mel of the turn (tiled when a span is shorter than a
        window); ``chunks`` models run the frontend on each span, since Whisper's normalisation
        depends on the whole input.
        """
        if self.chunked:
            return [self.logmel(y[a:b]) for a, b in spans]
        lm = self.logmel(y)
        hop_length = self.card.frontend.hop_length
        return [self.fit_window(lm[:, a // hop_length : a // hop_length + self.window_frames]) for a, _ in spans]

    def fit_window(self, logmel_window: np.ndarray) -> np.ndarray:
        """Tile a shorter-than-window log-mel ``[n_mels, f]`` to ``[n_mels, window_frames]``."""
        return fit_length(logmel_window, self.window_frames)

    @property
    def speaker_normalised(self) -> bool:
        """Whether this model standardises a speaker's segments by that speaker's statistics."""
        return self.heads is not None and self.card.normalisation is not None

    def outputs(self, features: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """What ``model.onnx`` returns for inputs ``[n_mels, frames]`` (any lengths): ``[n, k]`` float32.

        Logits for classifier kinds, embeddings for embedding kinds. Inputs of one length are
        batched together (up to 32 at a time), in their original order.
        """
        out: np.ndarray | None = None
        by_shape: dict[tuple, list[int]] = {}
        for i, f in enumerate(features):
            by_shape.setdefault(tuple(np.shape(f)), []).append(i)
        for members in by_shape.values():
            for s in range(0, len(members), _BATCH):
                part = members[s : s + _BATCH]
                x = np.ascontiguousarray(np.stack([features[i] for i in part]), dtype=np.float32)
                z = self.session.run(None, {self._input: x})[0]
                if out is None:
                    out = np.zeros((len(features), z.shape[-1]), np.float32)
                out[part] = z
        return out if out is not None else np.zeros((0, len(self.labels)), np.float32)

    def logits(self, features: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Logits of single inputs ``[n_mels, frames]`` -> ``[n, n_classes]`` float32.

        An embedding model answers with its ``global`` head here: one input says nothing about
        its speaker (:meth:`speaker_logits` takes a speaker's segments together).
        """
        z = self.outputs(features)
        if self.heads is None:
            return z
        return self.heads.logits(z, "global") if len(z) else np.zeros((0, len(self.labels)), np.float32)

    def speaker_logits(self, embeddings: np.ndarray) -> tuple[np.ndarray, str]:
        """Logits of the segments of one speaker, from their embeddings ``[n, d]``; and the head used.

        The speaker's neutral reference is estimated from the segments themselves
        (:meth:`speaker_reference`), then :meth:`referenced_logits`.
        """
        return self.referenced_logits(embeddings, self.speaker_reference(embeddings))

    def speaker_reference(self, embeddings: np.ndarray) -> np.ndarray | None:
        """A speaker's neutral reference from their segments' embeddings (:func:`~emovox.features.normalise.neutral_reference`);
        None for too little neutral-sounding speech or a model without speaker normalisation."""
        heads, norm = self._embedding_heads(), self.card.normalisation
        E = np.asarray(embeddings, np.float64)
        if norm is None or not len(E):
            return None
        return neutral_reference(E, self.neutral_weights(heads.logits(E, "global")),
                                 lambda Z: self.neutral_weights(heads.logits(Z, "speaker")),
                                 iterations=norm.iterations, min_weight=norm.min_weight)

    def referenced_logits(self, embeddings: np.ndarray, reference: np.ndarray | None) -> tuple[np.ndarray, str]:
        """Each embedding minus ``reference`` through the ``speaker`` head; the ``global`` head without one."""
        heads = self._embedding_heads()
        E = np.asarray(embeddings, np.float64)
        if reference is None or self.card.normalisation is None:
            return heads.logits(E, "global"), "global"
        return heads.logits(E - reference, "speaker"), "speaker"

    def neutral_weights(self, logits: np.ndarray) -> np.ndarray:
        """Each row's probability (softmax, uncalibrated) of a reference class of the speaker normalisation."""
        norm = self.card.normalisation
        cols = [self.labels.index(x) for x in (norm.reference_labels if norm is not None else ("neutral",))]
        return softmax(np.asarray(logits, np.float64))[:, cols].sum(axis=1)

    def _embedding_heads(self) -> Heads:
        if self.heads is None:
            raise ParameterError(f"{self.card.name}: needs an embedding model (kind whisper_embed), not {self.card.kind}")
        return self.heads

    def clip_embeddings(self, clips: Sequence[np.ndarray], *, vad: bool = True) -> list[np.ndarray | None]:
        """Embeddings of 16 kHz clips (mean over each clip's chunks); None where a clip is not speech."""
        self._embedding_heads()
        with single_thread_blas():
            chosen = self._choose(clips, sr=SAMPLE_RATE, vad=vad)
            means = self._clip_means(chosen)
        return [means.get(i) for i in range(len(chosen))]

    def label_index(self, restrict_to: Sequence[str] | None = None) -> np.ndarray:
        """Indices of ``restrict_to`` among the labels (all labels if None)."""
        if restrict_to is None:
            return np.arange(len(self.labels))
        unknown = [x for x in restrict_to if x not in self.labels]
        if unknown or not restrict_to:
            raise ParameterError(
                f"restrict_to: unknown label(s) {unknown or '[]'}; the model has {', '.join(self.labels)}"
            )
        return np.array([self.labels.index(x) for x in dict.fromkeys(restrict_to)])

    def decide(self, mean_logits: np.ndarray, index: np.ndarray | None = None, *,
               head: str = "global") -> Prediction:
        """A :class:`Prediction` from averaged logits ``[n_classes]`` (over ``index`` labels).

        ``head="speaker"``: the logits came from the speaker head, calibrated by its own temperature.
        """
        idx = np.arange(len(self.labels)) if index is None else index
        norm = self.card.normalisation
        temperature = norm.temperature if head == "speaker" and norm is not None else self.card.temperature
        p = softmax(mean_logits[idx] / temperature)
        order = np.argsort(-p)
        conf = float(p[order[0]])
        margin = conf - float(p[order[1]]) if len(p) > 1 else conf
        probs = {self.labels[i]: round(float(v), 6) for i, v in zip(idx, p, strict=True)}
        uncertain = conf < self.min_confidence or margin < self.min_margin
        return Prediction(self.labels[idx[order[0]]], probs, round(conf, 6), bool(uncertain))

    def is_speech(self, y: np.ndarray) -> bool:
        """Whether a clip holds enough speech to be given an emotion (VAD + steadiness)."""
        mask = speech_mask(y, aggressiveness=self.vad_aggressiveness)
        speech_seconds = float(mask.sum()) * FRAME_SECONDS
        if not len(mask) or speech_seconds < self.min_speech_seconds or mask.mean() < self.min_speech_ratio:
            return False
        return not is_steady(y)

    # -- public API ---------------------------------------------------------------------------
    def _as_array(self, audio: AudioSource | np.ndarray, sr: int) -> np.ndarray:
        if isinstance(audio, np.ndarray):
            y = validate(audio)
            if y.ndim == 2:
                if y.shape[0] >= y.shape[1]:  # more channels than samples: soundfile's (n, channels)
                    raise ParameterError(
                        f"audio array of shape {audio.shape} is ambiguous: pass (channels, n) or (n,); "
                        "transpose soundfile's (n, channels) with y.T, or read with emovox.audio.load")
                y = y.mean(axis=0)
            if y.ndim != 1:
                raise ParameterError(f"audio array must be 1-D or (channels, n), got shape {audio.shape}")
            return resample(y, sr) if sr != SAMPLE_RATE else y
        return load(audio, sr=SAMPLE_RATE, channels="mix")

    def predict(self, audio: AudioSource | np.ndarray, *, sr: int = SAMPLE_RATE,
                restrict_to: Sequence[str] | None = None, vad: bool = True) -> Prediction:
        """Emotion of one clip: averaged window logits, then ``softmax(logits / temperature)``.

        Parameters
        ----------
        audio : np.ndarray [shape=(n,)] at ``sr``, or a path / bytes / file object
        restrict_to : list of str, optional
            Renormalise over these labels only (e.g. a corpus with fewer classes).
        vad : bool
            If True, clips with too little speech (or steady tones and noise) give
            ``"no_speech"``.

        Raises
        ------
        AudioError
            Unreadable, empty or non-finite audio.
        """
        return self.predict_many([audio], sr=sr, restrict_to=restrict_to, vad=vad)[0]

    def predict_many(self, clips: Sequence[AudioSource | np.ndarray], *, sr: int = SAMPLE_RATE,
                     restrict_to: Sequence[str] | None = None, vad: bool = True,
                     speakers: Sequence[str] | None = None) -> list[Prediction]:
        """:meth:`predict` for many clips, batching their windows through the model together.

        ``speakers`` (one name per clip) lets a speaker-normalised model take each speaker's clips
        together (:meth:`speaker_logits`); other models ignore it.
        """
        if speakers is not None and len(speakers) != len(clips):
            raise ParameterError(f"speakers: {len(speakers)} names for {len(clips)} clips")
        with single_thread_blas():
            return self._predict_many(clips, sr=sr, restrict_to=restrict_to, vad=vad, speakers=speakers)

    def _predict_many(self, clips: Sequence[AudioSource | np.ndarray], *, sr: int,
                      restrict_to: Sequence[str] | None, vad: bool,
                      speakers: Sequence[str] | None = None) -> list[Prediction]:
        idx = self.label_index(restrict_to)
        return self._aggregate(self._choose(clips, sr=sr, vad=vad), idx, speakers)

    def _choose(self, clips: Sequence[AudioSource | np.ndarray], *, sr: int, vad: bool) -> list[list[np.ndarray] | None]:
        """Each clip's model inputs, or None where VAD finds too little speech."""
        chosen: list[list[np.ndarray] | None] = []
        for clip in clips:
            y = self._as_array(clip, sr)
            if vad and not self.is_speech(y):
                chosen.append(None)
                continue
            # The CNN was trained on trimmed clips, the Whisper model on whole ones.
            chosen.append(self.clip_windows(y if self.chunked else trim_silence(y)))
        return chosen

    def _clip_means(self, chosen: list[list[np.ndarray] | None]) -> dict[int, np.ndarray]:
        """Per clip with inputs: the mean of the model's outputs over its windows, in one batch."""
        z = self.outputs([w for wins in chosen if wins is not None for w in wins])
        means: dict[int, np.ndarray] = {}
        pos = 0
        for i, wins in enumerate(chosen):
            if wins is not None:
                means[i] = z[pos : pos + len(wins)].mean(axis=0)
                pos += len(wins)
        return means

    def _aggregate(self, chosen: list[list[np.ndarray] | None], idx: np.ndarray,
                   speakers: Sequence[str] | None = None) -> list[Prediction]:
        # per clip: the mean over its windows (logits, or embeddings: the heads are affine, so the same)
        clip_out = self._clip_means(chosen)
        heads = {i: "global" for i in clip_out}
        if self.heads is not None and clip_out:
            groups: dict[str, list[int]] = {}
            for i in clip_out:
                groups.setdefault(speakers[i] if speakers is not None else f"\0{i}", []).append(i)
            for members in groups.values():
                logits, head = self.speaker_logits(np.stack([clip_out[i] for i in members]))
                for i, row in zip(members, logits, strict=True):
                    clip_out[i], heads[i] = row, head
        return [self.decide(clip_out[i], idx, head=heads[i]) if i in clip_out else Prediction(NO_SPEECH, {}, 1.0, False)
                for i in range(len(chosen))]

    def predict_segments(self, y: np.ndarray, spans: Sequence[tuple[float, float]], *,
                         restrict_to: Sequence[str] | None = None) -> list[Prediction]:
        """Emotions of ``spans`` (``(start, end)`` seconds) of one 16 kHz signal, in one batch.

        No VAD and no trimming: the spans are taken to be speech (as :func:`analyze` finds them).
        """
        with single_thread_blas():
            return self._predict_segments(y, spans, restrict_to=restrict_to)

    def _predict_segments(self, y: np.ndarray, spans: Sequence[tuple[float, float]], *,
                          restrict_to: Sequence[str] | None) -> list[Prediction]:
        idx = self.label_index(restrict_to)
        y = validate(y)
        chosen: list[list[np.ndarray] | None] = []
        for start, end in spans:
            a, b = max(0, int(round(start * SAMPLE_RATE))), min(len(y), int(round(end * SAMPLE_RATE)))
            if b <= a:
                raise ParameterError(f"span ({start}, {end}) is empty or outside the audio")
            chosen.append(self.clip_windows(y[a:b]))
        return self._aggregate(chosen, idx)

    def __repr__(self) -> str:
        return f"Predictor({self.card.name!r} v{self.card.version}, labels={list(self.labels)})"
