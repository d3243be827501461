"""Helpers shared by the subcommands."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_data_dir"]


def default_data_dir() -> str:
    """``$EMOVOX_DATA``, else ``../shared/data`` relative to the working directory."""
    return os.environ.get("EMOVOX_DATA") or str(Path("..") / "shared" / "data")
