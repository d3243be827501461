"""Moved to :mod:`emovox.testing`; this alias stays only until every test imports it from there."""

from ..testing import TOY_LABELS, make_toy_model

__all__ = ["TOY_LABELS", "make_toy_model"]
