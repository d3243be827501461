"""Corpus loaders with one label schema: RAVDESS, TESS, SAVEE, CREMA-D, EmoDB, folders, CSV manifests."""

from . import loaders as _loaders  # noqa: F401  (registers the loaders)
from .base import AUDIO_EXTENSIONS, LOADERS, Corpus, Item, Skipped, load_corpus
from .inventory import Inventory, default_data_dir, discover, inventory, load_all
from .manifest import load_manifest, write_manifest
from .splits import (
    Split,
    check_speaker_independent,
    leave_one_corpus_out,
    load_fold_file,
    random_split,
    speaker_folds,
)

__all__ = [
    "AUDIO_EXTENSIONS", "LOADERS", "Corpus", "Item", "Skipped", "load_corpus", "Inventory",
    "default_data_dir", "discover", "inventory", "load_all", "load_manifest", "write_manifest", "Split",
    "leave_one_corpus_out", "load_fold_file", "speaker_folds", "check_speaker_independent", "random_split",
]
