"""The output of a batch run: three Parquet datasets, written by Spark's executors, resumable.

Layout of OUT (Hive partitions, as Spark, Trino, DuckDB, pyarrow and BI tools read them)::

    segments/date=2024-03-01/part-*.parquet   one row per segment
    files/date=2024-03-01/part-*.parquet      one row per analysed file
    errors/date=.../part-*.parquet            one row per file that could not be analysed
    _staging/<batch>/...                      a batch being written (readers skip '_' and '.')
    _batches/<batch>                          one marker per published batch
    _batch.json                               model and settings of the run

``date`` is the recording's date (from the manifest or the file name;
``__HIVE_DEFAULT_PARTITION__`` when unknown); every row also carries the ``batch`` that wrote it.

**Commit protocol.** A batch (one Spark plan of a run, or one micro-batch of ``--watch``) is
written by the executors with Spark's Parquet writer and its commit protocol into
``_staging/<batch>/<table>``; nothing there is visible to readers. When the three writes have
succeeded, the driver *publishes* it: it writes ``_staging/<batch>/_READY``, moves each data file
to the same relative path under the table (file names are unique per Spark job), writes
``_batches/<batch>`` and deletes the staging folder. :meth:`BatchStore.open` (and so every run)
first *recovers*: a staged batch with ``_READY`` is published to the end (the moves are
idempotent), any other staged batch is deleted. So after any crash -- of the driver, an executor
or a Python worker -- every input is in ``files`` or ``errors`` once, or not at all and is
analysed by the next run. One run (or watcher) per OUT at a time. Moves are atomic renames on
local disks and HDFS; on object stores a reader can see a published batch's files appear one by
one, never a partial file.
"""

from __future__ import annotations

import json
import os
import time
import uuid

from .._lazy import require
from ..errors import DataError

__all__ = ["BatchStore", "TABLES", "new_batch_id"]

TABLES = ("segments", "files", "errors")


def new_batch_id(prefix: str = "b") -> str:
    """A sortable, unique batch id: ``b20261202T001500-1a2b3c4d``."""
    return f"{prefix}{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


class BatchStore:
    """Committed output under ``root`` (a local path or a URI pyarrow can open)."""

    def __init__(self, root: str | os.PathLike):
        pafs = require("pyarrow.fs", extra="spark")
        root = os.fspath(root)
        if "://" in root:
            self.fs, self.root = pafs.FileSystem.from_uri(root)
            self.uri = root.rstrip("/")
        else:
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(root)
            self.uri = self.root
        self.root = self.root.rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def url(self, *parts: str) -> str:
        """The path as Spark names it (the URI the store was opened with)."""
        return "/".join([self.uri, *parts])

    def _exists(self, path: str, *, kind: str = "any") -> bool:
        pafs = require("pyarrow.fs", extra="spark")
        info = self.fs.get_file_info(path)
        if kind == "dir":
            return info.type == pafs.FileType.Directory
        if kind == "file":
            return info.type == pafs.FileType.File
        return info.type != pafs.FileType.NotFound

    def _list(self, path: str, *, recursive: bool = False) -> list:
        pafs = require("pyarrow.fs", extra="spark")
        return self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=recursive))

    # -- opening and recovering -----------------------------------------------------------------
    def open(self, settings: dict) -> None:
        """Create the layout, check ``settings`` against a previous run, recover interrupted batches.

        Raises
        ------
        DataError
            OUT holds a run made with other settings (model, channels, speakers), or one written by an
            emovox older than this layout: resuming would mix them.
        """
        pafs = require("pyarrow.fs", extra="spark")
        for name in (*TABLES, "_staging", "_batches"):
            self.fs.create_dir(self.path(name), recursive=True)
        for table in TABLES:
            if any(i.type == pafs.FileType.File and i.base_name.startswith("part-") for i in self._list(self.path(table))):
                raise DataError(f"{self.root} was written by an emovox older than 0.9 (part files directly in "
                                f"{table}/); use another --out folder")
        meta = self.path("_batch.json")
        old = self._read_json(meta)
        keys = ("model", "channels", "speakers")  # "speakers" absent (None) unless a run set it
        if old is not None and any(old.get(k) != settings.get(k) for k in keys):
            diff = ", ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in keys if old.get(k) != settings.get(k))
            raise DataError(f"{self.root} holds a batch run with other settings ({diff}); "
                            "use another --out folder")
        if old is None:
            self._write_bytes(meta, json.dumps(settings, indent=2).encode())
        self.recover()

    def recover(self) -> list[str]:
        """Publish the staged batches that were ready, delete the others; returns those published."""
        pafs = require("pyarrow.fs", extra="spark")
        published = []
        for info in self._list(self.path("_staging")):
            if info.type != pafs.FileType.Directory:
                continue
            if self._exists(self.path("_staging", info.base_name, "_READY"), kind="file"):
                self._roll_forward(info.base_name)
                published.append(info.base_name)
            else:
                self.fs.delete_dir(info.path)
        return published

    # -- writing a batch ------------------------------------------------------------------------
    def stage(self, batch: str, table: str) -> str:
        """Where Spark writes ``table`` of ``batch`` (a URI for Spark)."""
        return self.url("_staging", batch, table)

    def published(self, batch: str) -> bool:
        """Whether ``batch`` is published (or staged ready, which :meth:`recover` will finish)."""
        return (self._exists(self.path("_batches", batch), kind="file")
                or self._exists(self.path("_staging", batch, "_READY"), kind="file"))

    def publish(self, batch: str, *, stats: dict | None = None) -> None:
        """Make a fully staged batch visible: ``_READY``, then the moves (see the module docstring)."""
        self._write_bytes(self.path("_staging", batch, "_READY"), json.dumps(stats or {}).encode())
        self._roll_forward(batch)

    def _roll_forward(self, batch: str) -> None:
        pafs = require("pyarrow.fs", extra="spark")
        stage = self.path("_staging", batch)
        for table in TABLES:
            base = f"{stage}/{table}"
            for info in self._list(base, recursive=True):
                rel = info.path[len(base) + 1:]
                if info.type != pafs.FileType.File or any(p.startswith(("_", ".")) for p in rel.split("/")):
                    continue
                final = self.path(table, rel)
                self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
                self.fs.move(info.path, final)
        ready = self._read_json(f"{stage}/_READY") or {}
        self._write_bytes(self.path("_batches", batch), json.dumps(ready).encode())
        self.fs.delete_dir(stage)

    def batches(self) -> list[str]:
        """The published batches, oldest first."""
        return sorted(i.base_name for i in self._list(self.path("_batches")) if not i.base_name.startswith(".") and not i.base_name.endswith(".tmp"))

    def commit(self, tables: dict, *, batch: str | None = None) -> str:
        """Write and publish one batch from pyarrow tables (keys of :data:`TABLES`), without Spark.

        The rows need a ``timestamp`` column for ``files``/``errors``; ``date`` and ``batch`` are
        added. Returns the batch id.
        """
        pa = require("pyarrow", extra="spark")
        pq = require("pyarrow.parquet", extra="spark")
        batch = batch or new_batch_id()
        stamps: dict[str, str | None] = {}
        for name in ("files", "errors"):
            t = tables.get(name)
            if t is not None:
                stamps.update(zip(t.column("file").to_pylist(), t.column("timestamp").to_pylist(), strict=True))
        for name in TABLES:
            table = tables.get(name)
            if table is None or table.num_rows == 0:
                continue
            files = table.column("file").to_pylist()
            table = table.append_column("batch", pa.array([batch] * table.num_rows, pa.string()))
            table = table.append_column("date", pa.array([date_of(stamps.get(f)) for f in files], pa.string()))
            pq.write_to_dataset(table, self.path("_staging", batch, name), partition_cols=["date"],
                                filesystem=self.fs, basename_template=f"part-{uuid.uuid4().hex[:12]}-{{i}}.parquet")
        self.publish(batch)
        return batch

    # -- reading --------------------------------------------------------------------------------
    def read(self, table: str):
        """One table as pandas, with its ``date`` partition column (empty DataFrame when empty)."""
        pd = require("pandas", extra="spark")
        pa = require("pyarrow", extra="spark")
        ds = require("pyarrow.dataset", extra="spark")
        files = list(self._data_files(table))
        if not files:
            return pd.DataFrame()
        part = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
        data = ds.dataset(files, format="parquet", partitioning=part, partition_base_dir=self.path(table),
                          filesystem=self.fs)
        return data.to_table().to_pandas()

    def _data_files(self, table: str):
        pafs = require("pyarrow.fs", extra="spark")
        base = self.path(table)
        for info in self._list(base, recursive=True):
            rel = info.path[len(base) + 1:]
            if info.type == pafs.FileType.File and not any(p.startswith(("_", ".")) for p in rel.split("/")):
                yield info.path

    def done(self) -> set[str]:
        """Files recorded in ``files`` or ``errors`` (read on this machine; the runner uses Spark)."""
        pq = require("pyarrow.parquet", extra="spark")
        out: set[str] = set()
        for table in ("files", "errors"):
            for path in self._data_files(table):
                out.update(pq.read_table(path, columns=["file"], filesystem=self.fs).column("file").to_pylist())
        return out

    def has_rows(self, table: str) -> bool:
        return any(True for _ in self._data_files(table))

    # -- helpers --------------------------------------------------------------------------------
    def _read_json(self, path: str) -> dict | None:
        if not self._exists(path, kind="file"):
            return None
        with self.fs.open_input_stream(path) as fh:
            try:
                return json.loads(fh.read().decode() or "{}")
            except ValueError:
                raise DataError(f"{path}: unreadable (not JSON); use another --out folder") from None

    def _write_bytes(self, path: str, data: bytes) -> None:
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(data)
        self.fs.move(tmp, path)


def date_of(timestamp: str | None) -> str | None:
    """The ``date`` partition of a recording: ``'2024-03-01T14:22:05'`` -> ``'2024-03-01'``.

    >>> date_of("2024-03-01T14:22:05"), date_of(None)
    ('2024-03-01', None)
    """
    return timestamp[:10] if timestamp else None
