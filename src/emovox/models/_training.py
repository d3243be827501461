"""The training loop behind :class:`emovox.models.neural.NeuralClassifier` (torch imported lazily).

One epoch: draw items (shuffled or group x class balanced), take a random window of each
(wrap-padded when short), optional SpecAugment and mixup, AdamW + one-cycle LR, then validate
on whole clips (mean window logits). A checkpoint is written every epoch and read back on start.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._numeric import softmax
from ..features.windows import fit_length

__all__ = ["TrainLoop", "stratified_holdout", "fit_temperature", "unweighted_recall", "softmax",
           "clip_logits", "expected_calibration_error"]


def load_tensors(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)``: tensors, containers, numbers and numpy arrays only.

    No pickled code runs: a checkpoint or weights.pt from elsewhere cannot execute anything on
    load. numpy arrays and scalars (in checkpoints of older emovox versions) are allowed as the
    plain data they are.
    """
    import importlib

    import torch

    multiarray = importlib.import_module("numpy._core.multiarray")
    allowed = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype,
               *{type(np.dtype(t)) for t in ("f4", "f8", "i4", "i8", "u4", "u8", "b1", "U1")}]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def unweighted_recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y_true`` (UA)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in np.unique(y_true)]))


def stratified_holdout(y: np.ndarray, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) holding out ``fraction`` of each class (at least one where it has 2+)."""
    rng = np.random.default_rng(seed)
    tr: list[int] = []
    va: list[int] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        va.extend(int(i) for i in idx[:k])
        tr.extend(int(i) for i in idx[k:])
    return np.sort(np.asarray(tr, dtype=np.int64)), np.sort(np.asarray(va, dtype=np.int64))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, *, bins: int = 15) -> float:
    """ECE with equal-width confidence bins."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Temperature minimising the NLL of ``softmax(logits / T)``; returns T and ECE (before, after)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = softmax(logits / np.exp(log_t))
        return float(-np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    t = float(np.exp(res.x))
    before = expected_calibration_error(softmax(logits), y)
    after = expected_calibration_error(softmax(logits / t), y)
    return t, (before, after)


def clip_logits(model: Any, clip_windows: list[np.ndarray], *, batch: int = 256) -> np.ndarray:
    """Mean logits per clip from each clip's windows ``[n_windows, n_mels, frames]``."""
    import torch

    if not clip_windows:
        return np.zeros((0, model.head.out_features), np.float32)
    flat = np.concatenate(clip_windows)
    owner = np.repeat(np.arange(len(clip_windows)), [len(w) for w in clip_windows])
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(flat), batch):
            out.append(model(torch.from_numpy(np.ascontiguousarray(flat[i : i + batch]))).numpy())
    logits = np.concatenate(out)
    sums = np.zeros((len(clip_windows), logits.shape[1]))
    np.add.at(sums, owner, logits)
    return (sums / np.bincount(owner)[:, None]).astype(np.float32)


class TrainLoop:
    """Runs the epochs for ``est`` (a NeuralClassifier with ``model_`` built) and keeps the best."""

    def __init__(self, est: Any, data: list[np.ndarray], y: np.ndarray, val_windows: list[np.ndarray],
                 val_y: np.ndarray, *, augmenter: Any, groups: list[str] | None,
                 waves: list[np.ndarray] | None = None, soft_targets: np.ndarray | None = None):
        import torch

        self.est, self.data, self.y, self.waves = est, data, y, waves
        self.val_windows, self.val_y = val_windows, val_y
        self.aug = augmenter
        self.soft = None
        if soft_targets is not None:  # the teacher softened by the distillation temperature
            t = float(est.distill_temperature)
            q = np.power(np.clip(np.asarray(soft_targets, dtype=np.float64), 1e-8, 1.0), 1.0 / t)
            self.soft = (q / q.sum(axis=1, keepdims=True)).astype(np.float32)
        self.groups = groups
        self.rng = np.random.default_rng(est.seed)
        self.model = est.model_
        self.window = est._frames(est.window_seconds)
        self.steps = max(1, -(-len(data) // est.batch_size))
        self.epochs = est.epochs_for(len(data))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=est.lr, weight_decay=est.weight_decay)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt, max_lr=est.lr, total_steps=self.steps * max(1, self.epochs), pct_start=0.15)
        counts = np.bincount(y, minlength=len(est.classes_)).astype(float)
        weight = counts.sum() / np.maximum(counts, 1) / len(counts)  # "balanced" class weights
        self.loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight, dtype=torch.float32),
                                                 label_smoothing=est.label_smoothing)
        # An exponential moving average of the weights (``ema`` decay), validated and kept instead of
        # the raw weights: with few steps and a small validation set it is steadier than any one epoch.
        self.ema = copy.deepcopy(self.model) if est.ema else None
        self.step = 0
        self.history: list[dict] = []
        self.best_ua, self.best_epoch = -1.0, 0
        self.best_state: dict[str, Any] | None = None
        self.best_val_logits = np.zeros((len(val_y), len(est.classes_)), np.float32)
        self.bad_epochs, self.start_epoch = 0, 0
        self.ckpt = Path(est.checkpoint_dir) / "checkpoint.pt" if est.checkpoint_dir else None
        self.key = hashlib.sha256(json.dumps(est._saved_params(), sort_keys=True, default=str).encode()
                                  + str(len(data)).encode()).hexdigest()[:16]

    # -- batches -----------------------------------------------------------------------------
    def _order(self) -> np.ndarray:
        n = len(self.data)
        if self.est.sampler == "balanced":
            g = np.asarray(self.groups) if self.groups is not None else np.zeros(n, dtype=int)
            keys = np.array([f"{a}|{b}" for a, b in zip(g, self.y, strict=True)])
            _, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
            p = 1.0 / np.sqrt(cnt[inv])
            return self.rng.choice(n, size=n, replace=True, p=p / p.sum())
        return self.rng.permutation(n)

    def _crop(self, i: int) -> np.ndarray:
        from ..features.logmel import logmel

        x = self.data[i]
        plan = self.aug.plan(self.rng) if self.waves is not None else []
        if plan and self.waves is not None:  # augment a random ~1.25-window stretch, then its log-mel
            w, span = self.waves[i], int(1.25 * self.est.window_seconds * self.est.frontend.sr)
            if len(w) > span:
                s = int(self.rng.integers(0, len(w) - span + 1))
                w = w[s : s + span]
            x = logmel(self.aug.apply(w, self.rng, plan), config=self.est.frontend)
        n = x.shape[-1]
        if n > self.window:
            s = int(self.rng.integers(0, n - self.window + 1))
            return x[:, s : s + self.window]
        return fit_length(np.roll(x, int(self.rng.integers(0, n)), axis=-1), self.window)

    def _epoch(self) -> float:
        import torch

        self.model.train()
        order = self._order()
        total, seen = 0.0, 0
        for b in range(self.steps):
            idx = order[b * self.est.batch_size : (b + 1) * self.est.batch_size]
            if not len(idx):
                continue
            x = np.stack([self._crop(i) for i in idx]).astype(np.float32)
            x = self.aug.spec_augment(x, self.rng)
            yb = torch.from_numpy(self.y[idx])
            lam, perm = self.aug.mixup(len(idx), self.rng)
            xt = torch.from_numpy(x)
            if perm is not None:
                xt = lam * xt + (1 - lam) * xt[torch.from_numpy(perm)]
            logits = self.model(xt)
            loss = self.loss_fn(logits, yb)
            if perm is not None:
                loss = lam * loss + (1 - lam) * self.loss_fn(logits, yb[torch.from_numpy(perm)])
            if self.soft is not None:
                loss = self._distilled(loss, logits, idx, lam, perm)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.opt.step()
            if self.sched.last_epoch + 1 < self.sched.total_steps:
                self.sched.step()
            self._update_ema()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        return total / max(seen, 1)

    def _distilled(self, loss: Any, logits: Any, idx: np.ndarray, lam: float, perm: np.ndarray | None) -> Any:
        """Blend the label loss with the cross-entropy to the softened teacher (x T^2, as Hinton et al.)."""
        import torch

        assert self.soft is not None
        q = torch.from_numpy(self.soft[idx])
        if perm is not None:
            q = lam * q + (1 - lam) * q[torch.from_numpy(perm)]
        t, alpha = float(self.est.distill_temperature), float(self.est.distill_alpha)
        kd = -(q * torch.log_softmax(logits / t, dim=1)).sum(dim=1).mean() * t * t
        return (1 - alpha) * loss + alpha * kd

    def _update_ema(self) -> None:
        import torch

        self.step += 1
        if self.ema is None:
            return
        decay = min(float(self.est.ema), (1 + self.step) / (10 + self.step))  # short warm-up
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
            for e, b in zip(self.ema.buffers(), self.model.buffers(), strict=True):
                e.copy_(b)

    @property
    def _scored(self) -> Any:
        """The weights that are validated and kept: the moving average when there is one."""
        return self.ema if self.ema is not None else self.model

    def _validate(self) -> tuple[np.ndarray, float, float]:
        logits = clip_logits(self._scored, self.val_windows)
        p = softmax(logits)
        loss = float(-np.mean(np.log(p[np.arange(len(self.val_y)), self.val_y] + 1e-12)))
        return logits, loss, unweighted_recall(self.val_y, logits.argmax(1))

    # -- checkpoints -------------------------------------------------------------------------
    def _save_checkpoint(self, epoch: int) -> None:
        import torch

        if self.ckpt is None:
            return
        self.ckpt.parent.mkdir(parents=True, exist_ok=True)
        state = {"key": self.key, "epoch": epoch, "model": self.model.state_dict(), "step": self.step,
                 "ema": self.ema.state_dict() if self.ema is not None else None,
                 "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                 "history": self.history, "best": (self.best_ua, self.best_epoch, self.best_state),
                 "best_val_logits": self.best_val_logits, "bad_epochs": self.bad_epochs,
                 "rng": (self.rng.bit_generator.state, torch.get_rng_state(), random.getstate())}
        tmp = self.ckpt.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt)

    def _resume(self) -> None:
        import torch

        if self.ckpt is None or not self.ckpt.is_file():
            return
        state = load_tensors(self.ckpt)
        if state.get("key") != self.key:
            self.est._log(f"{self.ckpt}: checkpoint of another configuration; starting over")
            return
        self.model.load_state_dict(state["model"])
        self.step = int(state.get("step", 0))
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.history = state["history"]
        self.best_ua, self.best_epoch, self.best_state = state["best"]
        self.best_val_logits, self.bad_epochs = state["best_val_logits"], state["bad_epochs"]
        self.rng.bit_generator.state = state["rng"][0]
        torch.set_rng_state(state["rng"][1])
        random.setstate(state["rng"][2])
        self.start_epoch = state["epoch"]
        self.est._log(f"resumed from {self.ckpt} after epoch {self.start_epoch}")

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> None:
        import torch

        self._resume()
        for epoch in range(self.start_epoch + 1, self.epochs + 1):
            if self.bad_epochs >= self.est.patience:
                break
            t0 = time.time()
            lr = self.opt.param_groups[0]["lr"]
            train_loss = self._epoch()
            logits, val_loss, ua = self._validate()
            if self.est.keep == "last":  # nothing chosen on the validation speakers
                self.best_ua, self.best_epoch, self.best_state = ua, epoch, None
                self.best_val_logits = logits
            elif ua > self.best_ua:
                self.best_ua, self.best_epoch, self.bad_epochs = ua, epoch, 0
                self.best_state = {k: v.detach().clone() for k, v in self._scored.state_dict().items()}
                self.best_val_logits = logits
            else:
                self.bad_epochs += 1
            row = {"epoch": epoch, "train_loss": round(train_loss, 4), "val_loss": round(val_loss, 4),
                   "val_ua": round(ua, 4), "lr": lr, "seconds": round(time.time() - t0, 1)}
            self.history.append(row)
            self.est._log(json.dumps(row))
            self._save_checkpoint(epoch)
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        elif self.ema is not None:  # keep = "last": the moving average is what was validated
            self.model.load_state_dict(self.ema.state_dict())
        self.model.eval()
        torch.set_grad_enabled(True)
