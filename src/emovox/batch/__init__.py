"""Scale-out analysis and analytics: Spark batch jobs, dataset and call-level reports.

``run_batch`` analyses a collection on Apache Spark into resumable Parquet datasets
(segments / files / errors) written by the executors; ``watch_folder`` keeps them current as
files land (Structured Streaming); ``extract_features_spark`` is ``emovox features --engine spark``;
``dataset_report`` and ``batch_report`` write self-contained HTML pages with tables for BI
tools. pyspark, pandas and matplotlib are imported only when a function needs them.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

__all__ = [
    "run_batch", "BatchResult", "watch_folder", "ship_to_cluster", "spark_session", "resolve_inputs", "parse_timestamp", "BatchStore",
    "extract_features_spark", "dataset_report", "collect_items", "clip_table", "batch_report",
    "clip_stats", "yin_f0",
]

_WHERE = {
    "run_batch": "runner", "BatchResult": "runner", "watch_folder": "watch", "ship_to_cluster": "spark", "spark_session": "spark",
    "resolve_inputs": "inputs", "parse_timestamp": "inputs", "BatchStore": "store",
    "extract_features_spark": "features", "dataset_report": "report_data", "collect_items": "report_data",
    "clip_table": "report_data", "batch_report": "report_batch", "clip_stats": "stats", "yin_f0": "stats",
}


__getattr__, __dir__ = lazy_attributes(__name__, _WHERE)
