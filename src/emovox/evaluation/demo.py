"""The demo call: a ~60 s two-channel mock support call spoken by espeak-ng.

Agent on channel 0 (a calm female voice), customer on channel 1 (a male voice) who starts
neutral, gets angry (loud, fast, high), then sad (slow, low, quiet), then calms down. Synthetic
speech is not acted emotion: the demo shows the pipeline, not the model's accuracy.

The script, voices and the -65 dBFS line noise (fixed seed) are fixed, so the same espeak-ng
version writes the same file. A copy ships in ``emovox/assets/demo_call.ogg`` for machines
without espeak-ng.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import SAMPLE_RATE, resample
from ..errors import MissingDependencyError, ParameterError

__all__ = ["Turn", "SCRIPT", "make_demo_call", "write_demo_call", "shipped_demo_path"]


@dataclass(frozen=True)
class Turn:
    """One line of the script: who speaks, what, how (espeak-ng voice settings), and the pause after."""

    channel: int
    text: str
    voice: str
    speed: int = 160  # words per minute
    pitch: int = 50  # 0..99
    amplitude: int = 100  # 0..200
    pause: float = 0.8  # seconds of silence after the turn


AGENT, CUSTOMER = "en-us+f3", "en-gb+m3"
SCRIPT: tuple[Turn, ...] = (
    Turn(0, "Thank you for calling Northwind support, my name is Anna. How can I help you today?", AGENT, 165, 60),
    Turn(1, "Hello. I am calling about my internet connection. It has been down since Monday.", CUSTOMER, 160, 45),
    Turn(0, "I am sorry to hear that. Could you give me your account number, please?", AGENT, 165, 60),
    Turn(1, "It is four, seven, two, nine, one, five.", CUSTOMER, 155, 45, pause=1.2),
    Turn(1, "Yes! This is the third time I have called! Nobody fixes anything, and I am paying for a "
            "service I do not get! I want this fixed today, not next week!", CUSTOMER, 235, 90, 200, 0.5),
    Turn(1, "This is completely unacceptable!", CUSTOMER, 240, 95, 200, 1.0),
    Turn(0, "I completely understand your frustration. Let me check the line right now.", AGENT, 165, 58, pause=2.5),
    Turn(0, "I can see an outage in your area. A technician will be there tomorrow morning.", AGENT, 160, 58),
    Turn(1, "Tomorrow. I work from home. I have already lost two days of pay. "
            "I really do not know what to do any more.", CUSTOMER, 105, 15, 60, 1.2),
    Turn(0, "I will add two weeks of credit to your account, and I will call you back tomorrow.",
         AGENT, 170, 60),
    Turn(1, "Okay. Thank you, that does help. Have a nice day.", CUSTOMER, 165, 50),
    Turn(0, "You too. Goodbye!", AGENT, 170, 62, pause=0.5),
)


def shipped_demo_path() -> Path:
    """The demo call that ships with emovox (Ogg/Opus, 16 kHz stereo)."""
    return Path(__file__).resolve().parent.parent / "assets" / "demo_call.ogg"


def _speak(turn: Turn, exe: str, tmp: Path) -> np.ndarray:
    out = tmp / "turn.wav"
    cmd = [exe, "-v", turn.voice, "-s", str(turn.speed), "-p", str(turn.pitch),
           "-a", str(turn.amplitude), "-w", str(out), turn.text]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    y, sr = sf.read(out, dtype="float32")
    y = resample(y if y.ndim == 1 else y.mean(axis=1), sr, SAMPLE_RATE)
    nz = np.flatnonzero(np.abs(y) > 1e-4)  # trim espeak's leading/trailing silence
    return y[nz[0] : nz[-1] + 1] if len(nz) else y


def make_demo_call(script: tuple[Turn, ...] = SCRIPT, *, lead_in: float = 0.7, seed: int = 0) -> np.ndarray:
    """Synthesise the call.

    Returns
    -------
    np.ndarray [shape=(2, n)], float32 at 16 kHz; channel 0 agent, channel 1 customer

    Raises
    ------
    MissingDependencyError
        espeak-ng is not installed (``apt install espeak-ng``).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingDependencyError("espeak-ng is not installed; install it with: apt install espeak-ng")
    pieces: list[tuple[int, int, np.ndarray]] = []
    pos = int(lead_in * SAMPLE_RATE)
    with tempfile.TemporaryDirectory() as tmp:
        for turn in script:
            y = _speak(turn, exe, Path(tmp))
            pieces.append((turn.channel, pos, y))
            pos += len(y) + int(turn.pause * SAMPLE_RATE)
    total = pos + int(0.5 * SAMPLE_RATE)
    call = np.zeros((2, total), dtype=np.float32)
    for channel, start, y in pieces:
        call[channel, start : start + len(y)] += y
    peak = float(np.abs(call).max()) or 1.0
    call *= 0.89 / peak  # -1 dBFS peak
    rng = np.random.default_rng(seed)
    call += (rng.standard_normal(call.shape) * 10 ** (-65 / 20)).astype(np.float32)
    return np.clip(call, -1.0, 1.0)


def write_demo_call(out: str | os.PathLike = "demo_call.wav", *, use_shipped: bool | None = None) -> Path:
    """Write the demo call to ``out`` (format from the suffix: .wav, .flac, .ogg).

    With ``use_shipped=None`` espeak-ng synthesises it when installed, else the shipped copy is
    converted; ``True``/``False`` force one or the other. Written to a temp file and renamed.
    """
    out = Path(out)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(out.suffix.lower())
    if fmt is None:
        raise ParameterError(f"{out}: choose a .wav, .flac or .ogg file name")
    if use_shipped is None:
        use_shipped = shutil.which("espeak-ng") is None
    if use_shipped:
        call, sr = sf.read(shipped_demo_path(), dtype="float32", always_2d=True)
        call = resample(call.T, sr, SAMPLE_RATE)
    else:
        call = make_demo_call()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "OPUS"}[fmt]
    sf.write(tmp, call.T, SAMPLE_RATE, format=fmt, subtype=subtype)
    os.replace(tmp, out)
    return out
