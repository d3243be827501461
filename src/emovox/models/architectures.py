"""The neural architectures, readable in one file: input ``[batch, n_mels, frames]`` log-mel, output logits.

Every model starts with :class:`MeanVarNorm` (per-utterance mean and variance over time, per mel
band), so loudness, microphone colour and corpus offsets do not reach the network. The model
hyper-parameters live in :class:`ModelDims`, which is saved next to the weights
(``ModelDims(**checkpoint["dims"])``), as openai/whisper does.

- ``cnn1d``: the source projects' 1-D CNN over log-mel frames (mel bands as channels).
- ``cnn_lstm``: 1-D conv front end, then a stacked LSTM over time.
- ``lstm``: a stacked LSTM straight on the frames.
- ``crnn``: the compact default: 2-D conv blocks (BN, ReLU, squeeze-excitation) on the log-mel
  image, a bidirectional GRU over the pooled time axis, attention pooling, linear.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..errors import ParameterError

__all__ = ["ModelDims", "ARCHS", "build_model", "MeanVarNorm", "count_flops"]


@dataclass(frozen=True)
class ModelDims:
    """Hyper-parameters of every architecture; each uses the fields it needs."""

    arch: str = "crnn"
    n_mels: int = 64
    n_classes: int = 7
    width: int = 24  # channels of the first conv block; doubled at each stage up to 4x / 5x
    hidden: int = 96  # recurrent hidden size (per direction)
    layers: int = 2  # recurrent layers (lstm, cnn_lstm); conv stages (cnn1d)
    dropout: float = 0.2
    se: bool = True  # squeeze-excitation in the crnn conv blocks
    rnn: bool = True  # crnn: BiGRU between the convs and the pooling
    pooling: str = "attention"  # crnn: "attention" | "mean"
    norm: str = "band"  # "band": mean/var per mel band over time; "global": one mean/var per utterance

    def to_dict(self) -> dict:
        return asdict(self)


class MeanVarNorm(nn.Module):
    """Per-utterance normalisation to zero mean, unit variance.

    ``per_band=True`` normalises each mel band over time (removes channel colour, as cepstral
    mean-variance normalisation does); ``False`` uses one mean and variance per utterance
    (removes loudness only, keeps the spectral envelope).
    """

    def __init__(self, per_band: bool = True, eps: float = 1e-5):
        super().__init__()
        self.dims = (-1,) if per_band else (-2, -1)
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:  # [B, M, T] -> [B, M, T]
        mean = x.mean(dim=self.dims, keepdim=True)
        var = (x - mean).pow(2).mean(dim=self.dims, keepdim=True)
        return (x - mean) / torch.sqrt(var + self.eps)


class AttentionPool(nn.Module):
    """Softmax-weighted mean over time: ``[B, T, D] -> [B, D]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, dim // 2), nn.Tanh(), nn.Linear(dim // 2, 1))

    def forward(self, x: Tensor) -> Tensor:
        w = torch.softmax(self.score(x), dim=1)  # [B, T, 1]
        return (w * x).sum(dim=1)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction), nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels), nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:  # [B, C, F, T]
        s = self.fc(x.mean(dim=(2, 3)))
        return x * s[:, :, None, None]


class ConvBlock2d(nn.Module):
    """conv3x3 -> BN -> ReLU (-> SE) -> max-pool."""

    def __init__(self, c_in: int, c_out: int, *, pool: tuple[int, int], se: bool,
                 stride: tuple[int, int] = (1, 1)):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.se = SqueezeExcite(c_out) if se else nn.Identity()
        self.pool = nn.MaxPool2d(pool)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.se(torch.relu(self.bn(self.conv(x)))))


class CRNN(nn.Module):
    """2-D conv stages on the log-mel image (64 bands -> 4), BiGRU over time, attention pooling.

    With ``width=24`` a 3 s window (301 frames) costs about 0.3 GFLOPs.
    """

    def __init__(self, dims: ModelDims):
        super().__init__()
        w = dims.width
        chans = [1, w, 2 * w, 4 * w, 5 * w]
        pools = [(2, 2), (2, 2), (2, 2), (2, 1)]
        self.norm = MeanVarNorm(dims.norm == "band")
        self.blocks = nn.Sequential(*[
            ConvBlock2d(chans[i], chans[i + 1], pool=pools[i], se=dims.se and i > 0,
                        stride=(1, 2) if i == 0 else (1, 1))  # 20 ms steps from the first conv
            for i in range(4)
        ])
        freq = dims.n_mels // 16
        self.proj = nn.Sequential(nn.Linear(chans[-1] * freq, 2 * dims.hidden), nn.ReLU(inplace=True))
        self.rnn = nn.GRU(2 * dims.hidden, dims.hidden, batch_first=True, bidirectional=True) if dims.rnn else None
        self.pool = AttentionPool(2 * dims.hidden) if dims.pooling == "attention" else None
        self.dropout = nn.Dropout(dims.dropout)
        self.head = nn.Linear(2 * dims.hidden, dims.n_classes)

    def forward(self, x: Tensor) -> Tensor:  # [B, M, T] -> [B, n_classes]
        x = self.blocks(self.norm(x).unsqueeze(1))  # [B, C, M/16, T/16]
        b, c, f, t = x.shape
        x = self.proj(x.permute(0, 3, 1, 2).reshape(b, t, c * f))  # [B, T', 2H]
        if self.rnn is not None:
            x, _ = self.rnn(x)
        x = self.pool(x) if self.pool is not None else x.mean(dim=1)
        return self.head(self.dropout(x))


def _conv1d_block(c_in: int, c_out: int, kernel: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True), nn.MaxPool1d(2), nn.Dropout(dropout),
    )


class CNN1d(nn.Module):
    """The source projects' 1-D CNN: mel bands as channels, conv over frames, mean+max pooling."""

    def __init__(self, dims: ModelDims):
        super().__init__()
        chans = [dims.n_mels] + [dims.width * 4 * (2 ** min(i, 1)) for i in range(max(dims.layers, 1) + 1)]
        self.norm = MeanVarNorm(dims.norm == "band")
        self.convs = nn.Sequential(*[_conv1d_block(chans[i], chans[i + 1], 5, dims.dropout)
                                     for i in range(len(chans) - 1)])
        self.head = nn.Linear(2 * chans[-1], dims.n_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.convs(self.norm(x))  # [B, C, T']
        return self.head(torch.cat([x.mean(dim=-1), x.amax(dim=-1)], dim=1))


class CNNLSTM(nn.Module):
    """Two 1-D conv blocks (time / 4), a stacked LSTM, mean pooling over time."""

    def __init__(self, dims: ModelDims):
        super().__init__()
        c = dims.width * 4
        self.norm = MeanVarNorm(dims.norm == "band")
        self.convs = nn.Sequential(_conv1d_block(dims.n_mels, c, 5, dims.dropout),
                                   _conv1d_block(c, c, 5, dims.dropout))
        self.lstm = nn.LSTM(c, dims.hidden, num_layers=dims.layers, batch_first=True,
                            dropout=dims.dropout if dims.layers > 1 else 0.0)
        self.head = nn.Linear(dims.hidden, dims.n_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.convs(self.norm(x)).transpose(1, 2)  # [B, T', C]
        x, _ = self.lstm(x)
        return self.head(x.mean(dim=1))


class StackedLSTM(nn.Module):
    """The source projects' LSTM baseline: stacked LSTM over the (frame-pair-stacked) log-mel."""

    def __init__(self, dims: ModelDims):
        super().__init__()
        self.norm = MeanVarNorm(dims.norm == "band")
        self.pool = nn.AvgPool1d(2)  # 10 ms -> 20 ms frames: halves the recurrent steps
        self.lstm = nn.LSTM(dims.n_mels, dims.hidden, num_layers=dims.layers, batch_first=True,
                            dropout=dims.dropout if dims.layers > 1 else 0.0)
        self.head = nn.Linear(dims.hidden, dims.n_classes)

    def forward(self, x: Tensor) -> Tensor:
        x, _ = self.lstm(self.pool(self.norm(x)).transpose(1, 2))
        return self.head(x.mean(dim=1))


ARCHS: dict[str, type[nn.Module]] = {"cnn1d": CNN1d, "cnn_lstm": CNNLSTM, "lstm": StackedLSTM, "crnn": CRNN}


def build_model(dims: ModelDims) -> nn.Module:
    """Instantiate the architecture ``dims.arch``."""
    if dims.arch not in ARCHS:
        raise ParameterError(f"unknown arch {dims.arch!r}: set arch (the recipe's [model] arch or "
                             f"NeuralClassifier(arch=...)) to one of {', '.join(ARCHS)}")
    return ARCHS[dims.arch](dims)


def count_flops(model: nn.Module, *, n_mels: int = 64, frames: int = 301) -> int:
    """FLOPs (2 x multiply-accumulates) of one forward pass on ``[1, n_mels, frames]``.

    Counted with forward hooks on Conv, Linear and recurrent layers; element-wise ops (BN, ReLU,
    pooling, normalisation) are left out, as is usual.
    """
    macs = 0

    def conv_hook(m: nn.Conv1d | nn.Conv2d, inp: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal macs
        k = int(torch.tensor(m.kernel_size).prod())
        macs += out.numel() * (m.in_channels // m.groups) * k

    def linear_hook(m: nn.Linear, inp: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal macs
        macs += out.numel() * m.in_features

    def rnn_hook(m: nn.GRU | nn.LSTM, inp: tuple[Tensor, ...], out: tuple[Tensor, object]) -> None:
        nonlocal macs
        gates = {nn.GRU: 3, nn.LSTM: 4}[type(m)]
        steps = inp[0].shape[1]
        dirs = 2 if m.bidirectional else 1
        size_in = m.input_size
        for _ in range(m.num_layers):
            macs += steps * dirs * gates * m.hidden_size * (size_in + m.hidden_size)
            size_in = m.hidden_size * dirs

    hooks: list[RemovableHandle] = []
    for mod in model.modules():
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(linear_hook))
        elif isinstance(mod, (nn.GRU, nn.LSTM)):
            hooks.append(mod.register_forward_hook(rnn_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, n_mels, frames))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return 2 * macs
