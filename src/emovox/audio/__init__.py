"""Audio input: decode anything to float32 mono (or per-channel) at 16 kHz, in one go or in blocks."""

from .io import (
    SAMPLE_RATE,
    AudioInfo,
    AudioSource,
    describe,
    info,
    load,
    resample,
    stream,
    validate,
)

__all__ = ["SAMPLE_RATE", "AudioInfo", "AudioSource", "describe", "info", "load", "resample", "stream", "validate"]
