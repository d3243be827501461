"""Whisper's audio encoder in PyTorch, cut after its first ``n_blocks`` blocks (training only).

The layout follows ``openai/whisper``'s ``model.py``: two GELU convolutions (the second with
stride 2, so 50 frames per second), a sinusoidal position table, pre-LayerNorm transformer
blocks. Two differences make it fit emotion recognition on a CPU:

* the position table is sliced to the input's length instead of padding every clip to 30 s
  (12x cheaper for a 3 s clip; the blocks were trained on 30 s inputs, fine-tuning adapts them);
* it stops after ``n_blocks`` blocks -- the middle blocks carry more paralinguistic
  information than the last one, which is tuned for transcription. Whisper's final LayerNorm
  belongs to the last block's output, so a cut encoder returns un-normalised hidden states.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .weights import EncoderDims, encoder_dims, load_encoder_weights

__all__ = ["WhisperEncoder", "ResidualAttentionBlock"]


class ResidualAttentionBlock(nn.Module):
    """Pre-LayerNorm self-attention + MLP block, as Whisper's encoder blocks (no cross-attention)."""

    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.attn_ln = nn.LayerNorm(n_state)
        self.qkv = nn.Linear(n_state, 3 * n_state)  # fused as in CTranslate2; Whisper's key has no bias
        self.out = nn.Linear(n_state, n_state)
        self.mlp_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.attn_ln(x)).view(b, t, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """The first ``n_blocks`` blocks of a Whisper encoder.

    Parameters
    ----------
    dims : EncoderDims
    n_blocks : int
        How many transformer blocks to keep (1..dims.n_layer).

    ``forward(mel)`` takes ``[batch, n_mels, frames]`` (:func:`~.frontend.whisper_logmel`, at most
    3000 frames) and returns the hidden states ``[batch, frames // 2, n_state]`` after the last kept
    block; ``forward(mel, all_layers=True)`` returns the list of the input to block 1 and the output
    of each kept block (``n_blocks + 1`` tensors).
    """

    def __init__(self, dims: EncoderDims, n_blocks: int):
        super().__init__()
        if not 1 <= n_blocks <= dims.n_layer:
            raise ValueError(f"n_blocks must be in 1..{dims.n_layer} for this encoder, got {n_blocks}")
        self.dims = dims
        self.n_blocks = n_blocks
        self.conv1 = nn.Conv1d(dims.n_mels, dims.n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dims.n_state, dims.n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", torch.zeros(dims.n_ctx, dims.n_state))
        self.blocks = nn.ModuleList(ResidualAttentionBlock(dims.n_state, dims.n_head) for _ in range(n_blocks))

    @classmethod
    def pretrained(cls, name: str = "base", n_blocks: int = 3) -> WhisperEncoder:
        """The pinned pretrained weights (:func:`~.weights.load_encoder_weights`), float32."""
        w = load_encoder_weights(name)
        enc = cls(encoder_dims(w), n_blocks)
        enc.load_ctranslate2(w)
        return enc

    def load_ctranslate2(self, w: dict[str, np.ndarray]) -> None:
        """Copy CTranslate2 encoder variables into this module (float32)."""
        def t(key: str) -> torch.Tensor:
            return torch.from_numpy(np.asarray(w[key], dtype=np.float32))

        sd = {"conv1.weight": t("encoder/conv1/weight"), "conv1.bias": t("encoder/conv1/bias"),
              "conv2.weight": t("encoder/conv2/weight"), "conv2.bias": t("encoder/conv2/bias"),
              "positional_embedding": t("encoder/position_encodings/encodings")}
        for i in range(self.n_blocks):
            p = f"encoder/layer_{i}"
            sd |= {
                f"blocks.{i}.attn_ln.weight": t(f"{p}/self_attention/layer_norm/gamma"),
                f"blocks.{i}.attn_ln.bias": t(f"{p}/self_attention/layer_norm/beta"),
                f"blocks.{i}.qkv.weight": t(f"{p}/self_attention/linear_0/weight"),
                f"blocks.{i}.qkv.bias": t(f"{p}/self_attention/linear_0/bias"),
                f"blocks.{i}.out.weight": t(f"{p}/self_attention/linear_1/weight"),
                f"blocks.{i}.out.bias": t(f"{p}/self_attention/linear_1/bias"),
                f"blocks.{i}.mlp_ln.weight": t(f"{p}/ffn/layer_norm/gamma"),
                f"blocks.{i}.mlp_ln.bias": t(f"{p}/ffn/layer_norm/beta"),
                f"blocks.{i}.mlp.0.weight": t(f"{p}/ffn/linear_0/weight"),
                f"blocks.{i}.mlp.0.bias": t(f"{p}/ffn/linear_0/bias"),
                f"blocks.{i}.mlp.2.weight": t(f"{p}/ffn/linear_1/weight"),
                f"blocks.{i}.mlp.2.bias": t(f"{p}/ffn/linear_1/bias"),
            }
        self.load_state_dict(sd)

    def stem(self, mel: torch.Tensor) -> torch.Tensor:
        """Convolutions + positions: ``[batch, n_mels, frames]`` -> ``[batch, frames // 2, n_state]``."""
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        pos: torch.Tensor = self.positional_embedding  # type: ignore[assignment]
        return x + pos[: x.shape[1]]

    def forward(self, mel: torch.Tensor, *, all_layers: bool = False):
        x = self.stem(mel)
        states = [x]
        for block in self.blocks:
            x = block(x)
            states.append(x)
        return states if all_layers else x
