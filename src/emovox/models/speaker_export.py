"""Export resemblyzer's speaker encoder (``VoiceEncoder``) to ONNX for the predict path.

Run once, by a maintainer, with resemblyzer and torch installed (not at run time)::

    pip install --no-deps resemblyzer==0.1.4 'setuptools<81'
    python -m emovox.models.speaker_export            # -> src/emovox/assets/speaker/

The encoder (Jemine 2019, after Wan et al. 2018, "Generalized end-to-end loss for speaker
verification") is a 3-layer LSTM (hidden 256) over 40-band mel power frames (25 ms window, 10 ms
hop, 16 kHz), a linear layer to 256, ReLU, and L2 normalisation. Its pretrained weights ship
inside the resemblyzer wheel (Apache-2.0); the ONNX graph takes ``mels`` float32
``[batch, frames, 40]`` and returns ``embedding`` float32 ``[batch, 256]`` (unit length).
The frontend is reimplemented in numpy in :mod:`emovox.inference.speaker`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from .._lazy import require

__all__ = ["export_voice_encoder", "DEFAULT_OUT"]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "assets" / "speaker"
RESEMBLYZER_VERSION = "0.1.4"


def export_voice_encoder(out_dir: str | Path = DEFAULT_OUT, *, opset: int = 17) -> Path:
    """Write ``voice_encoder.onnx`` and ``speaker.json`` (frontend, dimensions, SHA-256) to ``out_dir``."""
    torch = require("torch", extra="train")
    resemblyzer = require("resemblyzer", extra="train")
    from resemblyzer import hparams

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False).eval()

    class _Graph(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self, enc):
            super().__init__()
            self.enc = enc

        def forward(self, mels):
            _, (hidden, _) = self.enc.lstm(mels)
            raw = torch.relu(self.enc.linear(hidden[-1]))
            return raw / torch.clamp(torch.norm(raw, dim=1, keepdim=True), min=1e-8)

    dummy = torch.rand(2, 160, hparams.mel_n_channels)
    path = out / "voice_encoder.onnx"
    torch.onnx.export(_Graph(encoder), (dummy,), str(path), input_names=["mels"], output_names=["embedding"],
                      dynamic_axes={"mels": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
                      opset_version=opset, dynamo=False)
    meta = {
        "name": "resemblyzer-voice-encoder",
        "source": f"resemblyzer=={RESEMBLYZER_VERSION} (pretrained.pt inside the wheel)",
        "licence": "Apache-2.0",
        "frontend": {"sample_rate": hparams.sampling_rate, "n_fft": hparams.sampling_rate * hparams.mel_window_length // 1000,
                     "hop_length": hparams.sampling_rate * hparams.mel_window_step // 1000,
                     "n_mels": hparams.mel_n_channels, "power": 2.0, "log": False,
                     "norm_target_dbfs": hparams.audio_norm_target_dBFS},
        "dims": {"hidden": hparams.model_hidden_size, "layers": hparams.model_num_layers,
                 "embedding": hparams.model_embedding_size, "partial_frames": hparams.partials_n_frames},
        "sha256": {path.name: hashlib.sha256(path.read_bytes()).hexdigest()},
    }
    (out / "speaker.json").write_text(json.dumps(meta, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: the package's assets/speaker)")
    args = p.parse_args(argv)
    path = export_voice_encoder(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
