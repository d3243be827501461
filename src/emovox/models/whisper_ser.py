"""The default emotion model: a pretrained Whisper encoder cut after k blocks, plus a pooling head.

::

    log-mel [b, 80, f] -> conv stem -> blocks 1..k (Whisper, pretrained) -> attentive statistics
    pooling -> LayerNorm -> MLP -> logits [b, n_classes]

The lower part (stem and the first ``frozen_blocks`` blocks) stays as pretrained; the blocks above
it are fine-tuned with the head. On a 2-core CPU that split is what makes training affordable:
the frozen part is run once per clip (and once per augmented copy) and its hidden states are
cached, so an epoch only runs the trainable blocks (see :func:`fit_on_states`). The exported
ONNX graph is the whole model, from log-mel to logits.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError, ParameterError
from ..features.whisper.encoder import WhisperEncoder
from ..features.whisper.weights import EncoderDims, encoder_dims, load_encoder_weights

__all__ = ["SERConfig", "AttentiveStatsPool", "WhisperSER", "fit_on_states", "predict_states",
           "save_checkpoint", "load_checkpoint"]


@dataclass(frozen=True)
class SERConfig:
    """Hyper-parameters of a :class:`WhisperSER`, stored with its weights."""

    encoder: str = "base"
    n_blocks: int = 3
    frozen_blocks: int = 2
    n_classes: int = 7
    hidden: int = 256
    attention: int = 128
    dropout: float = 0.3

    def to_dict(self) -> dict:
        return asdict(self)


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and standard deviation over time (Okabe et al., 2018)."""

    def __init__(self, d: int, attention: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(d, attention), nn.Tanh(), nn.Linear(attention, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.score(h), dim=1)  # [b, t, 1]
        mean = (w * h).sum(dim=1)
        var = (w * (h - mean.unsqueeze(1)) ** 2).sum(dim=1)
        return torch.cat([mean, torch.sqrt(var + 1e-5)], dim=-1)


class WhisperSER(nn.Module):
    """Whisper encoder (first ``n_blocks`` blocks) + attentive statistics pooling + MLP head."""

    def __init__(self, config: SERConfig, dims: EncoderDims):
        super().__init__()
        if not 0 <= config.frozen_blocks <= config.n_blocks:
            raise ParameterError(f"frozen_blocks must be in 0..n_blocks ({config.n_blocks}), "
                                 f"got {config.frozen_blocks}")
        self.config = config
        self.encoder = WhisperEncoder(dims, config.n_blocks)
        d = dims.n_state
        # Whisper's hidden states have a few channels hundreds of times larger than the rest; a
        # LayerNorm would let them dominate. Per-channel statistics (BatchNorm: in eval mode a
        # fixed standardisation, like a StandardScaler) put every channel on one scale.
        self.frame_norm = nn.BatchNorm1d(d)
        self.pool = AttentiveStatsPool(d, config.attention)
        self.head = nn.Sequential(nn.BatchNorm1d(2 * d), nn.Dropout(config.dropout), nn.Linear(2 * d, config.hidden),
                                  nn.GELU(), nn.Dropout(config.dropout), nn.Linear(config.hidden, config.n_classes))

    @classmethod
    def pretrained(cls, config: SERConfig) -> WhisperSER:
        """Encoder from the pinned Whisper weights, head freshly initialised (seed first)."""
        w = load_encoder_weights(config.encoder)
        model = cls(config, encoder_dims(w))
        model.encoder.load_ctranslate2(w)
        return model

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(fine-tuned encoder blocks, head) parameters; the stem and frozen blocks are neither."""
        blocks = [p for b in self.encoder.blocks[self.config.frozen_blocks:] for p in b.parameters()]
        return blocks, [*self.frame_norm.parameters(), *self.pool.parameters(), *self.head.parameters()]

    def from_states(self, h: torch.Tensor) -> torch.Tensor:
        """Logits from the hidden states after the frozen part ``[b, t, d]``."""
        for block in self.encoder.blocks[self.config.frozen_blocks:]:
            h = block(h)
        h = self.frame_norm(h.transpose(1, 2)).transpose(1, 2)
        return self.head(self.pool(h))

    def frozen_states(self, mel: torch.Tensor) -> torch.Tensor:
        """Hidden states after the stem and the frozen blocks: ``[b, 80, f]`` -> ``[b, f // 2, d]``."""
        h = self.encoder.stem(mel)
        for block in self.encoder.blocks[: self.config.frozen_blocks]:
            h = block(h)
        return h

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.from_states(self.frozen_states(mel))


def _balanced_draw(y: np.ndarray, groups: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices, each (group, class) cell equally likely, items uniform within a cell."""
    cells: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(groups.tolist(), y.tolist(), strict=True)):
        cells.setdefault(key, []).append(i)
    members = list(cells.values())
    pick = rng.integers(0, len(members), size=n)
    return np.array([members[c][rng.integers(0, len(members[c]))] for c in pick])


def _batches(order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of similar length (sorted within chunks of 8 batches), in random order."""
    out = []
    chunk = batch_size * 8
    for s in range(0, len(order), chunk):
        part = order[s : s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        out += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(out)  # type: ignore[arg-type]
    return out


def _crop_batch(states: Sequence[np.ndarray], idx: np.ndarray, max_frames: int, rng: np.random.Generator,
                *, time_masks: int, time_width: int) -> torch.Tensor:
    """Random crops of one length (the shortest in the batch, at most ``max_frames``), time-masked."""
    length = min(max_frames, min(len(states[i]) for i in idx))
    rows = []
    for i in idx:
        s = states[i]
        start = int(rng.integers(0, len(s) - length + 1))
        x = np.asarray(s[start : start + length], dtype=np.float32)
        for _ in range(time_masks):  # SpecAugment's time masks, on the frozen part's states
            w = int(rng.integers(0, min(time_width, max(1, length // 5)) + 1))
            if w:
                t0 = int(rng.integers(0, length - w + 1))
                x = x.copy() if not x.flags.writeable else x
                x[t0 : t0 + w] = x.mean(axis=0)
        rows.append(x)
    return torch.from_numpy(np.stack(rows))


def fit_on_states(model: WhisperSER, states: Sequence[np.ndarray], y: np.ndarray, groups: np.ndarray, *,
                  epochs: int = 4, samples_per_epoch: int | None = None, batch_size: int = 16,
                  lr_head: float = 1e-3, lr_blocks: float = 5e-5, weight_decay: float = 0.05,
                  label_smoothing: float = 0.1, max_frames: int = 400, time_masks: int = 2,
                  time_width: int = 20, seed: int = 0, threads: int | None = None,
                  log: Callable[[str], None] | None = None) -> list[dict]:
    """Fine-tune ``model``'s upper blocks and head on cached frozen-part states.

    Parameters
    ----------
    states : list of np.ndarray [shape=(frames, d)]
        :meth:`WhisperSER.frozen_states` of each training clip (float16 is fine); several
        augmented copies of a clip may appear, with the same label and group.
    y : np.ndarray [shape=(n,)], int class indices
    groups : np.ndarray [shape=(n,)]
        Corpus names: draws are balanced over corpus x class.
    epochs, samples_per_epoch : int
        Draws per epoch (default: ``len(states)``), one-cycle schedule over all of them.

    Returns
    -------
    list of dict
        Per epoch: mean training loss, seconds.
    """
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    groups = np.asarray(groups)
    lengths = np.array([len(s) for s in states])
    n = int(samples_per_epoch or len(states))
    blocks, head = model.trainable_parameters()
    groups_opt: list[dict] = [{"params": head, "lr": lr_head}]
    max_lr = [lr_head]
    if blocks:
        groups_opt.append({"params": blocks, "lr": lr_blocks})
        max_lr.append(lr_blocks)
    opt = torch.optim.AdamW(groups_opt, weight_decay=weight_decay)
    steps = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps,
                                                pct_start=0.1, anneal_strategy="cos")
    for p in model.parameters():
        p.requires_grad_(False)
    for p in [*blocks, *head]:
        p.requires_grad_(True)
    history = []
    for epoch in range(epochs):
        model.train()
        t0, total, count = time.time(), 0.0, 0
        for idx in _batches(_balanced_draw(y, groups, n, rng), lengths, batch_size, rng):
            x = _crop_batch(states, idx, max_frames, rng, time_masks=time_masks, time_width=time_width)
            loss = F.cross_entropy(model.from_states(x), torch.from_numpy(y[idx]).long(),
                                   label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*blocks, *head], 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        history.append({"epoch": epoch + 1, "loss": round(total / max(count, 1), 4),
                        "seconds": round(time.time() - t0, 1)})
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {history[-1]['loss']:.3f} ({history[-1]['seconds']:.0f} s)")
    model.eval()
    return history


@torch.no_grad()
def predict_states(model: WhisperSER, states: Sequence[np.ndarray], *, max_frames: int = 1500) -> np.ndarray:
    """Logits ``[n, n_classes]`` of whole clips from their frozen-part states (one clip at a time)."""
    model.eval()
    out = [model.from_states(torch.from_numpy(np.asarray(s[:max_frames], dtype=np.float32))[None])[0].numpy()
           for s in states]
    return np.stack(out) if out else np.zeros((0, model.config.n_classes), np.float32)


def save_checkpoint(model: WhisperSER, path: str | os.PathLike, *, labels: Sequence[str], extra: dict) -> None:
    """Weights as a plain tensor state dict (``torch.load(weights_only=True)`` reads it) + JSON beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    meta = {"config": model.config.to_dict(), "dims": asdict(model.encoder.dims), "labels": list(labels), **extra}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1))


def load_checkpoint(path: str | os.PathLike) -> tuple[WhisperSER, dict]:
    """A :class:`WhisperSER` and its JSON metadata from :func:`save_checkpoint`."""
    path = Path(path)
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = WhisperSER(SERConfig(**meta["config"]), EncoderDims(**meta["dims"]))
        model.load_state_dict(state)
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise ModelError(f"{path}: not a WhisperSER checkpoint ({str(exc).splitlines()[0][:120]})") from None
    return model.eval(), meta


# -- export: a model directory for the inference core ---------------------------------------------

def export_onnx(model: WhisperSER, path: str | os.PathLike, *, opset: int = 17) -> float:
    """The whole model, log-mel to logits, as ONNX (dynamic batch and frames).

    Returns the largest |onnxruntime - torch| logit difference over probes of several lengths;
    raises :class:`ModelError` (and writes nothing) above 1e-3.
    """
    import warnings

    from .onnx_export import onnx_logits

    model.eval()
    path = Path(path)
    tmp = path.with_suffix(".tmp.onnx")
    x = torch.randn(1, model.encoder.dims.n_mels, 300)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings on the position-table slice; probed below
        torch.onnx.export(model, (x,), str(tmp), input_names=["logmel"], output_names=["logits"],
                          opset_version=opset, dynamo=False,
                          dynamic_axes={"logmel": {0: "batch", 2: "frames"}, "logits": {0: "batch"}})
    diff = 0.0
    for b, t in ((1, 300), (2, 137), (1, 800), (1, 26)):
        probe = torch.rand(b, model.encoder.dims.n_mels, t) * 2 - 1
        with torch.no_grad():
            ref = model(probe).numpy()
        diff = max(diff, float(np.abs(onnx_logits(tmp, probe.numpy()) - ref).max()))
    if diff > 1e-3:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"ONNX export differs from torch by {diff:.2e} (> 1e-3); not written")
    os.replace(tmp, path)
    return diff


def export_model_dir(model: WhisperSER, out: str | os.PathLike, *, labels: Sequence[str], name: str,
                     version: str, temperature: float, window_seconds: float, metrics: dict,
                     training: dict, int8_only: bool = True) -> Path:
    """Write a model directory (``model.onnx``, ``model.json``) the inference core loads.

    With ``int8_only`` the shipped ``model.onnx`` is the int8 graph (dense layers quantised,
    convolutions float): the float graph (4x larger) is kept beside it as ``model.float.onnx``
    only when ``int8_only`` is False.
    """
    from ..features.whisper.frontend import WhisperFrontendConfig
    from ..features.whisper.weights import provenance
    from .onnx_export import quantize_int8, sha256

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    float_path = out / "model.float.onnx"
    diff = export_onnx(model, float_path)
    quantize_int8(float_path, out / "model.int8.onnx", op_types=("MatMul", "Gemm"))
    if int8_only:
        os.replace(out / "model.int8.onnx", out / "model.onnx")
        float_path.unlink()
        files = ["model.onnx"]
    else:
        os.replace(float_path, out / "model.onnx")
        files = ["model.onnx", "model.int8.onnx"]
    cfg = model.config
    meta = {
        "name": name,
        "version": version,
        "kind": "whisper_ser",
        "labels": list(labels),
        "frontend": WhisperFrontendConfig().to_dict(),
        "windowing": "chunks",
        "window_seconds": window_seconds,
        "hop_seconds": window_seconds,
        "min_chunk_seconds": 0.25,
        "temperature": float(temperature),
        "aggregation": "clips longer than window_seconds are cut into equal chunks, each through the "
                       "frontend and the model; chunk logits averaged, then softmax(logits / temperature)",
        "quantisation": "int8 dynamic (MatMul/Gemm weights), convolutions float" if int8_only else "float32",
        "sha256": {f: sha256(out / f) for f in files},
        "architecture": {**cfg.to_dict(), "width": model.encoder.dims.n_state,
                         "parameters": int(sum(p.numel() for p in model.parameters()))},
        "pretrained": provenance(cfg.encoder),
        "onnx": {"opset": 17, "input": "logmel [batch, 80, frames] (whisper_logmel)",
                 "output": "logits [batch, n_classes]", "max_abs_diff_vs_torch": diff,
                 "bytes": {f: (out / f).stat().st_size for f in files}},
        "metrics": metrics,
        "training": training,
    }
    (out / "model.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return out
