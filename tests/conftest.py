"""Shared fixtures. Every fixture makes its own audio; corpus tests skip where the data is absent."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000
REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("EMOVOX_DATA") or (REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """The corpora folder ($EMOVOX_DATA, default ../shared/data); skips the test where it is absent."""
    root = data_root()
    if not (root / "ravdess").is_dir():
        pytest.skip(f"corpora not found under {root} (set EMOVOX_DATA)")
    return root


def tone(freq: float = 220.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(), SR)
    return path


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, path: Path, *, voice: str = "en-us", pitch: int = 50, rate: int = 170, amplitude: int = 100) -> Path:
    """Synthesise ``text`` with espeak-ng into ``path`` (WAV, 22.05 kHz)."""
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(rate), "-a", str(amplitude),
                    "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    return speak("Hello, I am calling about my invoice. It is wrong again and I am very upset.", tmp_path / "speech.wav")
