"""Honest evaluation: recipes, speaker-independent protocols, metrics, HTML reports, benchmarks.

Submodules load on first use (``emovox.evaluation.run_protocol`` imports the runner), so importing
this package is cheap.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

__all__ = [
    "load_recipe", "validate_recipe", "find_recipe",
    "classification_metrics", "summarize_folds",
    "PROTOCOLS", "build_protocol", "protocol_key", "Fold", "ProtocolData", "load_items",
    "run_protocol", "evaluate_protocol", "train_model", "RunResult",
    "score_model", "write_run",
]

_WHERE = {
    "load_recipe": "recipe", "validate_recipe": "recipe", "find_recipe": "recipe",
    "classification_metrics": "metrics", "summarize_folds": "metrics",
    "PROTOCOLS": "protocols", "build_protocol": "protocols", "protocol_key": "protocols", "Fold": "protocols",
    "ProtocolData": "protocols", "load_items": "protocols",
    "run_protocol": "runner", "evaluate_protocol": "runner", "train_model": "runner", "RunResult": "runner",
    "score_model": "scoring", "write_run": "report",
}


__getattr__, __dir__ = lazy_attributes(__name__, _WHERE)
