"""The neural estimator: scikit-learn contract around a PyTorch model on log-mel windows.

Training takes random ``window_seconds`` crops of each (silence-trimmed) clip; prediction cuts
the clip into windows (:mod:`emovox.features.windows`) and averages the windows' logits, exactly
what :mod:`emovox.inference` does with the exported ONNX model. torch is imported lazily.
"""

from __future__ import annotations

import json
import os
import random
import time
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

from .._lazy import require
from ..errors import ModelError, ParameterError
from ..features.logmel import LogMelConfig, logmel
from ..features.windows import seconds_to_frames, trim_silence, windows
from . import _training as T

__all__ = ["NeuralClassifier"]

#: Architectures :func:`emovox.models.architectures.build_model` knows (kept here: that module imports torch).
ARCHS = ("crnn", "cnn1d", "cnn_lstm", "lstm")

_PARAMS = ("arch", "epochs", "samples", "batch_size", "lr", "weight_decay", "label_smoothing", "patience",
           "window_seconds", "hop_seconds", "augment", "sampler", "ema", "keep", "distill_alpha",
           "distill_temperature", "seed", "threads",
           "checkpoint_dir", "verbose")


def _positive(kind: type) -> Interval:
    return Interval(kind, 0, None, closed="neither") if kind is Real else Interval(kind, 1, None, closed="left")


#: :class:`emovox.models.architectures.ModelDims` fields a NeuralClassifier passes through, as
#: scikit-learn parameter constraints.
ARCH_PARAM_CONSTRAINTS: dict[str, list] = {
    "width": [_positive(Integral)], "hidden": [_positive(Integral)], "layers": [_positive(Integral)],
    "dropout": [Interval(Real, 0, 1, closed="left")], "se": ["boolean"], "rnn": ["boolean"],
    "pooling": [StrOptions({"attention", "mean"})], "norm": [StrOptions({"band", "global"})],
}


class NeuralClassifier(ClassifierMixin, BaseEstimator):
    """A neural speech-emotion classifier on 64-band log-mel windows.

    Parameters
    ----------
    arch : {"crnn", "cnn1d", "cnn_lstm", "lstm"}
    epochs, batch_size, lr, weight_decay, label_smoothing, patience
        AdamW with a one-cycle schedule; early stopping after ``patience`` epochs without a
        better validation UA (unweighted average recall).
    samples : int or None
        A training budget in clips drawn: the epoch count becomes ``ceil(samples / n_train)``,
        at least 2 and at most ``epochs``, so a fold of 1000 clips and one of 9000 cost about
        the same compute (see :meth:`epochs_for`).
    window_seconds, hop_seconds : float
        Training crop and prediction window length; prediction hop.
    augment : dict or None
        The recipe's ``[augment]`` table (see :mod:`emovox.audio.augment`); training items only.
    sampler : {"shuffle", "balanced"}
        ``"balanced"`` draws each epoch with probability inverse to the size of the item's
        ``groups`` value x class (pass ``groups=`` corpus names to :meth:`fit`).
    ema : float or None
        Decay of an exponential moving average of the weights (e.g. 0.995); when set, the
        average is what is validated, early-stopped and kept.
    keep : {"best", "last"}
        The weights kept: the best validation epoch's, or the last epoch's. ``"last"`` (with
        a fixed ``samples`` budget) chooses nothing on the validation speakers, so figures on
        them are those of unseen speakers; ``emovox train`` scores on its validation speakers.
    distill_alpha, distill_temperature : float
        With ``soft_targets`` given to :meth:`fit`, the loss is ``(1 - alpha) * CE(labels) +
        alpha * T^2 * CE(teacher softened by T, student / T)`` (knowledge distillation).
    seed, threads : int
        Seeds torch, numpy and random; ``threads`` sets torch's intra-op threads (default 2).
    checkpoint_dir : path or None
        A checkpoint is written there every epoch and training resumes from it when present.
    **arch_params
        :class:`emovox.models.architectures.ModelDims` fields (width, hidden, dropout, se, ...).
    """

    _parameter_constraints: dict = {
        "arch": [StrOptions(set(ARCHS))], "epochs": [_positive(Integral)], "samples": [_positive(Integral), None],
        "batch_size": [_positive(Integral)], "lr": [_positive(Real)],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")], "patience": [_positive(Integral)],
        "window_seconds": [_positive(Real)], "hop_seconds": [_positive(Real)], "augment": [dict, None],
        "sampler": [StrOptions({"shuffle", "balanced"})], "ema": [Interval(Real, 0, 1, closed="neither"), None],
        "keep": [StrOptions({"best", "last"})],
        "distill_alpha": [Interval(Real, 0, 1, closed="both")], "distill_temperature": [_positive(Real)],
        "seed": [Interval(Integral, 0, None, closed="left")], "threads": [_positive(Integral), None],
        "checkpoint_dir": [str, os.PathLike, None], "verbose": ["boolean"],
        **ARCH_PARAM_CONSTRAINTS,
    }

    def __init__(self, *, arch: str = "crnn", epochs: int = 30, samples: int | None = None, batch_size: int = 64,
                 lr: float = 1e-3, weight_decay: float = 1e-2, label_smoothing: float = 0.1,
                 patience: int = 8, window_seconds: float = 3.0, hop_seconds: float = 1.5,
                 augment: dict | None = None, sampler: str = "shuffle", ema: float | None = None,
                 keep: str = "best", distill_alpha: float = 0.5,
                 distill_temperature: float = 2.0, seed: int = 0,
                 threads: int | None = None, checkpoint_dir: str | None = None,
                 verbose: bool = False, **arch_params: Any):
        self.arch = arch
        self.epochs = epochs
        self.samples = samples
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.patience = patience
        self.window_seconds = window_seconds
        self.hop_seconds = hop_seconds
        self.augment = augment
        self.sampler = sampler
        self.ema = ema
        self.keep = keep
        self.distill_alpha = distill_alpha
        self.distill_temperature = distill_temperature
        self.seed = seed
        self.threads = threads
        self.checkpoint_dir = checkpoint_dir
        self.verbose = verbose
        self.arch_params = dict(arch_params)
        for k, v in arch_params.items():
            setattr(self, k, v)

    # -- scikit-learn contract ---------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        return {**{k: getattr(self, k) for k in _PARAMS}, **self.arch_params}

    def set_params(self, **params: Any) -> NeuralClassifier:
        for k, v in params.items():
            if k not in _PARAMS:
                self.arch_params[k] = v
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"NeuralClassifier(arch={self.arch!r}, epochs={self.epochs}, seed={self.seed})"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # a list of 1-D waveforms of any length, not a matrix
        tags.input_tags.one_d_array = True
        return tags

    def validate_params(self) -> None:
        """Check every parameter against its declared constraint (:attr:`_parameter_constraints`).

        Raises
        ------
        ParameterError
            A typo'd option (``sampler="balnced"``), an out-of-range number, or a parameter
            that no architecture takes; the message names the parameter and what it accepts.

        Examples
        --------
        >>> NeuralClassifier(sampler="balnced").validate_params()
        Traceback (most recent call last):
        ...
        emovox.errors.ParameterError: The 'sampler' parameter of NeuralClassifier must be a str among {...}. Got 'balnced' instead.
        """
        unknown = sorted(set(self.arch_params) - set(ARCH_PARAM_CONSTRAINTS))
        if unknown:
            raise ParameterError(f"NeuralClassifier: unknown parameter(s) {', '.join(unknown)}; it takes "
                                 f"{', '.join((*_PARAMS, *ARCH_PARAM_CONSTRAINTS))}")
        try:
            validate_parameter_constraints(self._parameter_constraints, self.get_params(deep=False),
                                           caller_name=type(self).__name__)
        except InvalidParameterError as exc:
            raise ParameterError(str(exc)) from None

    @classmethod
    def from_recipe(cls, recipe: dict, **overrides: Any) -> NeuralClassifier:
        """Build from a parsed recipe (``[model]``, ``[train]``, ``[augment]``, ``seed``)."""
        model = recipe.get("model", {})
        if model.get("kind", "neural") != "neural":
            raise ParameterError(f"recipe {recipe.get('name')!r} is not a neural recipe")
        train = dict(recipe.get("train", {}))
        kwargs = {"arch": model.get("arch", "crnn"), "seed": recipe.get("seed", 0),
                  "augment": dict(recipe.get("augment", {})) or None, **train,
                  **model.get("params", {}), **overrides}
        return cls(**kwargs)

    def epochs_for(self, n_train: int) -> int:
        """Epochs to train on ``n_train`` clips: ``epochs``, or fewer under a ``samples`` budget.

        Examples
        --------
        >>> NeuralClassifier(epochs=30, samples=15000).epochs_for(1000)
        15
        >>> NeuralClassifier(epochs=30, samples=15000).epochs_for(9000)
        2
        """
        if not self.samples:
            return int(self.epochs)
        return int(min(self.epochs, max(2, -(-int(self.samples) // max(1, n_train)))))

    # -- frames ------------------------------------------------------------------------------
    @property
    def frontend(self) -> LogMelConfig:
        return LogMelConfig()

    def _frames(self, seconds: float) -> int:
        return seconds_to_frames(seconds, sr=self.frontend.sr, hop_length=self.frontend.hop_length)

    def _logmel(self, wave: np.ndarray) -> np.ndarray:
        return logmel(trim_silence(np.asarray(wave, dtype=np.float32)), config=self.frontend)

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, waves: list[np.ndarray], y: list[str], *, val: tuple | None = None,
            groups: list[str] | None = None, soft_targets: np.ndarray | None = None) -> NeuralClassifier:
        """Train on 16 kHz mono clips ``waves`` with labels ``y``.

        Parameters
        ----------
        waves : list of np.ndarray [shape=(n_i,)], float32 at 16 kHz, any length
        y : list of str
        val : (waves, labels) or None
            Validation clips for early stopping, LR schedule and temperature scaling; never
            augmented. ``None`` holds out a stratified 10 % of the training clips.
        groups : list of str or None
            Per-clip group (corpus) for ``sampler="balanced"``.
        soft_targets : np.ndarray [shape=(n, n_classes)] or None
            A teacher's class probabilities per clip, columns in sorted label order (the
            ``classes_`` this fit will have); turns on distillation (see ``distill_alpha``).
        """
        self.validate_params()
        torch = require("torch", extra="train")
        if len(waves) != len(y) or not len(waves):
            raise ParameterError(f"need as many labels as clips, got {len(waves)} clips, {len(y)} labels")
        self._seed_all(torch)
        labels = np.asarray([str(v) for v in y])
        self.classes_ = np.unique(labels)
        if val is None:
            tr, va = T.stratified_holdout(labels, fraction=0.1, seed=self.seed)
            val = ([waves[i] for i in va], labels[va])
            waves, labels = [waves[i] for i in tr], labels[tr]
            groups = None if groups is None else [groups[i] for i in tr]
            soft_targets = None if soft_targets is None else np.asarray(soft_targets)[tr]
        if soft_targets is not None and np.shape(soft_targets) != (len(waves), len(self.classes_)):
            raise ParameterError(f"soft_targets must have shape {(len(waves), len(self.classes_))}, "
                                 f"got {np.shape(soft_targets)}")
        index = {c: i for i, c in enumerate(self.classes_)}
        y_idx = np.array([index[c] for c in labels])
        val_y = np.array([index.get(str(c), -1) for c in val[1]])
        if (val_y < 0).any():
            raise ParameterError("validation labels must be among the training labels")

        from ..audio.augment import Augmenter
        from .architectures import ModelDims, build_model

        self.dims_ = ModelDims(arch=self.arch, n_mels=self.frontend.n_mels,
                               n_classes=len(self.classes_), **self.arch_params)
        self.model_ = build_model(self.dims_)
        augmenter = Augmenter(self.augment or {}, sr=self.frontend.sr)
        t0 = time.time()
        train_data = [self._logmel(w) for w in waves]
        # Waveform augmentation keeps the trimmed waves; items it does not touch use the log-mel.
        train_waves = ([trim_silence(np.asarray(w, dtype=np.float32)) for w in waves]
                       if augmenter.wave_active else None)
        val_windows = [self._windows(w) for w in val[0]]
        self._log(f"features of {len(waves)} + {len(val[0])} clips in {time.time() - t0:.1f} s")
        loop = T.TrainLoop(self, train_data, y_idx, val_windows, val_y, augmenter=augmenter,
                           groups=groups, waves=train_waves, soft_targets=soft_targets)
        loop.run()
        self.history_ = loop.history
        val_logits = loop.best_val_logits
        self.temperature_, ece = T.fit_temperature(val_logits, val_y)
        pred = val_logits.argmax(1)
        self.metrics_ = {"val_ua": T.unweighted_recall(val_y, pred), "val_wa": float((pred == val_y).mean()),
                         "val_n": int(len(val_y)), "ece_before": ece[0], "ece_after": ece[1],
                         "best_epoch": loop.best_epoch}
        self._log(f"done: {self.metrics_}")
        return self

    def _seed_all(self, torch: Any) -> None:
        torch.manual_seed(self.seed)
        np.random.seed(self.seed)
        random.seed(self.seed)
        torch.set_num_threads(self.threads or min(2, os.cpu_count() or 1))

    def _windows(self, wave: np.ndarray) -> np.ndarray:
        return windows(self._logmel(wave), window=self._frames(self.window_seconds),
                       hop=self._frames(self.hop_seconds) - 1)

    def _log(self, msg: str) -> None:
        if self.verbose:
            print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    # -- predict -----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this NeuralClassifier is not fitted yet; call fit() or load()")

    def decision_function(self, waves: list[np.ndarray]) -> np.ndarray:
        """Uncalibrated clip logits ``[n, n_classes]``: the mean of the windows' logits."""
        self._check_fitted()
        torch = require("torch", extra="train")
        torch.set_num_threads(self.threads or min(2, os.cpu_count() or 1))
        return T.clip_logits(self.model_, [self._windows(w) for w in waves])

    def predict_proba(self, waves: list[np.ndarray]) -> np.ndarray:
        """Calibrated class probabilities ``[n, n_classes]`` (softmax of logits / temperature)."""
        return T.softmax(self.decision_function(waves) / self.temperature_)

    def predict(self, waves: list[np.ndarray]) -> np.ndarray:
        """Predicted labels ``[n]`` (strings from ``classes_``)."""
        logits = self.decision_function(waves)
        return self.classes_[logits.argmax(axis=1)]

    def score(self, waves: list[np.ndarray], y: list[str]) -> float:
        """Unweighted average recall (UA) on ``waves``."""
        pred = self.predict(waves)
        return T.unweighted_recall(np.asarray(y), pred)

    # -- persistence -------------------------------------------------------------------------
    def save(self, model_dir: str | os.PathLike, *, name: str = "emovox-neural", int8: bool = True,
             extra: dict | None = None) -> Path:
        """Write weights.pt, model.onnx (+ model.int8.onnx) and model.json into ``model_dir``."""
        self._check_fitted()
        torch = require("torch", extra="train")
        from .onnx_export import export_model_dir, jsonable

        out = Path(model_dir)
        out.mkdir(parents=True, exist_ok=True)
        # Tensors only, and the rest as JSON text: loadable with torch.load(weights_only=True).
        meta = {"dims": self.dims_.to_dict(), "classes": [str(c) for c in self.classes_],
                "params": self._saved_params(), "temperature": float(self.temperature_),
                "history": self.history_, "metrics": self.metrics_}
        ckpt = {"state_dict": self.model_.state_dict(), "meta": json.dumps(meta, default=jsonable)}
        tmp = out / "weights.pt.tmp"
        torch.save(ckpt, tmp)
        os.replace(tmp, out / "weights.pt")
        return export_model_dir(self, out, name=name, int8=int8, extra=extra or {})

    def _saved_params(self) -> dict:
        return {k: v for k, v in self.get_params().items() if k not in ("checkpoint_dir", "verbose")}

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> NeuralClassifier:
        """Load a model directory written by :meth:`save` (needs its weights.pt)."""
        require("torch", extra="train")
        from .architectures import ModelDims, build_model

        path = Path(model_dir) / "weights.pt"
        if not path.is_file():
            raise ModelError(f"{path}: not found; NeuralClassifier.load needs the weights.pt of a saved model")
        try:
            ckpt = T.load_tensors(path)
            # earlier versions stored the metadata beside the tensors, not as JSON text
            meta = json.loads(ckpt["meta"]) if "meta" in ckpt else {k: v for k, v in ckpt.items() if k != "state_dict"}
        except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... for foreign pickles
            raise ModelError(f"{path}: not a weights.pt of tensors and JSON ({str(exc).splitlines()[0][:160]}); "
                             "only what NeuralClassifier.save writes loads (pickled objects are refused): "
                             "re-save or re-train the model") from None
        est = cls(**meta["params"])
        est.dims_ = ModelDims(**meta["dims"])
        est.model_ = build_model(est.dims_)
        est.model_.load_state_dict(ckpt["state_dict"])
        est.model_.eval()
        est.classes_ = np.asarray(meta["classes"])
        est.temperature_ = float(meta["temperature"])
        est.history_ = meta.get("history", [])
        est.metrics_ = meta.get("metrics", {})
        return est

