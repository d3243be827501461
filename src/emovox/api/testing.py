"""Moved to :mod:`emovox.testing`; this alias stays only until every test imports it from there."""

from ..testing import Server, free_port, rss_bytes, running_app, running_server, start_server

__all__ = ["Server", "free_port", "start_server", "running_server", "running_app", "rss_bytes"]
