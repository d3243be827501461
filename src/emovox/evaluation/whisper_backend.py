"""The protocol runner's backend for ``kind = "whisper"`` recipes (the fine-tuned Whisper model).

Each fold starts from the pretrained weights. The frozen lower part's states of every clip (and
of ``[train] copies`` augmented copies of the training clips) come from the frame cache
(:mod:`emovox.features.whisper.frames`), so a fold costs only the fine-tuned blocks and head.
No early stopping: the recipe's epochs are fixed in advance, so nothing is chosen on the test
speakers and the validation speakers are simply part of the training data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._numeric import softmax
from ..corpora import Item
from ..errors import ParameterError
from .protocols import Fold

__all__ = ["WhisperBackend", "TRAIN_KEYS"]

#: ``[train]`` keys of a whisper recipe and their defaults.
TRAIN_KEYS = {"epochs": 4, "batch_size": 16, "lr": 1e-3, "lr_blocks": 5e-5, "weight_decay": 0.05,
              "label_smoothing": 0.1, "copies": 1, "max_frames": 400, "time_masks": 2, "time_width": 20,
              "samples": None}


class WhisperBackend:
    """Frames cached once for all items; one :class:`~emovox.models.whisper_ser.WhisperSER` per fold."""

    def __init__(self, recipe: dict, items: list[Item], *, quick: bool, progress: bool, workdir: Path | None,
                 threads: int | None = None):
        from ..features.whisper.frames import frozen_frames
        from ..models.whisper_ser import SERConfig

        self.recipe, self.items, self.quick, self.threads, self.progress = recipe, items, quick, threads, progress
        self.workdir = workdir
        params = dict(recipe["model"]["params"])
        unknown = set(params) - set(SERConfig.__dataclass_fields__) - {"n_classes"}
        if unknown:
            raise ParameterError(f"[model] params: unknown key(s) {sorted(unknown)} for whisper_ser")
        self.params = params
        self.train = {**TRAIN_KEYS, **{k: v for k, v in recipe["train"].items() if k in TRAIN_KEYS}}
        enc, layer = params.get("encoder", "base"), int(params.get("frozen_blocks", 2))
        paths = [it.path for it in items]
        self.clean = frozen_frames(paths, encoder=enc, layer=layer, progress=progress)
        self.copies = [frozen_frames(paths, encoder=enc, layer=layer, augment=recipe.get("augment") or {},
                                     seed=c + 1, progress=progress)
                       for c in range(int(self.train["copies"]))]

    def fit(self, fold: Fold, name: str):
        import torch

        from ..models.whisper_ser import SERConfig, WhisperSER, fit_on_states

        labels = list(fold.labels)
        idx = list(fold.train)
        y = np.array([labels.index(self.items[i].label) for i in idx])
        groups = np.array([self.items[i].corpus for i in idx])
        states = [self.clean[i] for i in idx] + [c[i] for c in self.copies for i in idx]
        reps = 1 + len(self.copies)
        torch.manual_seed(int(self.recipe.get("seed", 0)))
        model = WhisperSER.pretrained(SERConfig(**{**self.params, "n_classes": len(labels)}))
        t = self.train
        epochs = 1 if self.quick else int(t["epochs"])
        # one epoch = one draw per clean training clip and copy (balanced over corpus x class)
        samples = int(t["samples"]) if t["samples"] else len(states)
        history = fit_on_states(model, states, np.tile(y, reps), np.tile(groups, reps), epochs=epochs,
                                samples_per_epoch=samples, batch_size=int(t["batch_size"]),
                                lr_head=float(t["lr"]), lr_blocks=float(t["lr_blocks"]),
                                weight_decay=float(t["weight_decay"]), label_smoothing=float(t["label_smoothing"]),
                                max_frames=int(t["max_frames"]), time_masks=int(t["time_masks"]),
                                time_width=int(t["time_width"]), seed=int(self.recipe.get("seed", 0)),
                                threads=self.threads, log=(lambda m: print(f"{name}: {m}", flush=True))
                                if self.progress else None)
        model.history_ = history  # type: ignore[assignment]
        model.fold_name_ = name  # type: ignore[assignment]
        model.classes_ = labels  # type: ignore[assignment]
        return model, {}

    def predict_proba(self, model, idx: list[int]) -> tuple[np.ndarray, list[str]]:
        from ..models.whisper_ser import predict_states

        z = predict_states(model, [self.clean[i] for i in idx])
        if self.workdir is not None and getattr(model, "fold_name_", None) != "validation":
            self._int8_check(model, idx, z)
        return softmax(z), list(model.classes_)

    def _int8_check(self, model, idx: list[int], z_float: np.ndarray) -> None:
        """UA of the int8 ONNX graph beside the float model's on the same test clips (a JSON line)."""
        import json
        import tempfile

        from ..audio import load
        from ..inference import Predictor
        from ..models.whisper_ser import export_model_dir

        with tempfile.TemporaryDirectory() as tmp:
            export_model_dir(model, tmp, labels=model.classes_, name="check", version="0", temperature=1.0,
                             window_seconds=float(self.recipe["train"]["window_seconds"]), metrics={}, training={})
            pred = Predictor.load(tmp)
            z_int8 = np.stack([pred.logits(pred.clip_windows(load(self.items[i].path))).mean(axis=0) for i in idx])
        y = [model.classes_.index(self.items[i].label) for i in idx]
        ua = {name: float(np.mean([np.mean(np.argmax(z, 1)[np.array(y) == k] == k) for k in sorted(set(y))]))
              for name, z in (("float", z_float), ("int8_onnx", z_int8))}
        assert self.workdir is not None
        Path(self.workdir).mkdir(parents=True, exist_ok=True)
        with open(Path(self.workdir) / "int8_check.jsonl", "a") as fh:
            fh.write(json.dumps({"n": len(idx), **ua}) + "\n")


    def size(self, model) -> int:
        """Bytes of the weights as int8 (what the shipped ONNX's dense layers are quantised to)."""
        return int(sum(p.numel() for p in model.parameters()))

    def feature_ms(self, idx: list[int]) -> float:
        return 0.0  # the frontend and the frozen part run inside the model at inference
