"""Write a feature table to Parquet: metadata columns, feature columns, the config in the schema."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._lazy import require
from .registry import feature_config

__all__ = ["write_feature_table"]


def write_feature_table(meta: Any, feats: Any, out: str | os.PathLike, *, set: str) -> Path:
    """Write ``meta`` and ``feats`` (pandas DataFrames, same rows) side by side to ``out``.

    The feature config is stored in the schema metadata under ``emovox.features`` so a reader
    knows what it holds; the file appears only when complete (temp file, then rename).
    """
    pd = require("pandas", extra="train")
    pa = require("pyarrow", extra="train")
    pq = require("pyarrow.parquet", extra="train")
    out = Path(out)
    table = pa.Table.from_pandas(pd.concat([meta, feats], axis=1), preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           b"emovox.features": json.dumps({"set": set, **feature_config(set)}).encode()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
