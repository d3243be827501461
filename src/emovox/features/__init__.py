"""Features: the log-mel frontend (numpy only) and utterance-level feature sets, cached on disk.

librosa (hand-crafted sets) and opensmile (``egemaps``) are imported only when a set needs them.
"""

from .cache import FeatureCache, default_cache_dir
from .extract import Extraction, extract_batch, extract_many
from .logmel import LogMelConfig, logmel, mel_filterbank, melspectrogram
from .registry import FEATURE_SETS, FeatureSet, extract, feature_config, feature_names, resolve

__all__ = [
    "LogMelConfig", "logmel", "melspectrogram", "mel_filterbank",
    "FEATURE_SETS", "FeatureSet", "extract", "feature_names", "feature_config", "resolve",
    "extract_many", "extract_batch", "Extraction", "FeatureCache", "default_cache_dir",
]
