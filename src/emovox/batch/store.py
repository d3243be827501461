"""The output of a batch run: three Parquet datasets, committed part by part, resumable.

Layout of OUT::

    segments/part-<id>.parquet   one row per segment
    files/part-<id>.parquet      one row per analysed file
    errors/part-<id>.parquet     one row per file that could not be analysed
    _tmp/                        staging (readers skip names starting with '_' or '.')
    _batch.json                  model and settings of the run

Each part is written under ``_tmp/`` and then renamed into place, so a reader never sees half a
file. A part's files are committed in the order segments, files, errors; every input file is in
exactly one committed ``files`` or ``errors`` row. A crash between the renames leaves at worst a
``segments`` part whose ``files`` part is missing: :meth:`BatchStore.open` deletes such orphans
before a run resumes, so the files they describe are analysed again exactly once. Renames are
atomic on local disks and HDFS; on object stores (S3, GCS) a rename is a copy, so there a reader
can briefly see a part early, never a partial one.
"""

from __future__ import annotations

import json
import os
import uuid

from .._lazy import require
from ..errors import DataError

__all__ = ["BatchStore", "TABLES"]

TABLES = ("segments", "files", "errors")


class BatchStore:
    """Committed output under ``root`` (a local path or a URI pyarrow can open)."""

    def __init__(self, root: str):
        pafs = require("pyarrow.fs", extra="spark")
        if "://" in root:
            self.fs, self.root = pafs.FileSystem.from_uri(root)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(root)
        self.root = self.root.rstrip("/")

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    # -- opening and resuming ----------------------------------------------------------------
    def _parts(self, table: str) -> list[str]:
        pafs = require("pyarrow.fs", extra="spark")
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(table), allow_not_found=True))
        return sorted(i.base_name for i in infos
                      if i.type == pafs.FileType.File and i.base_name.startswith("part-")
                      and i.base_name.endswith(".parquet"))

    def open(self, settings: dict) -> set[str]:
        """Create the layout, check ``settings`` against a previous run, drop orphans.

        Returns the set of files already done (in ``files`` or ``errors``).

        Raises
        ------
        DataError
            OUT holds a run made with other settings (model, channels): resuming would mix them.
        """
        for name in (*TABLES, "_tmp"):
            self.fs.create_dir(self.path(name), recursive=True)
        meta = self.path("_batch.json")
        old = self._read_json(meta)
        keys = ("model", "channels")
        if old is not None and any(old.get(k) != settings.get(k) for k in keys):
            diff = ", ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in keys if old.get(k) != settings.get(k))
            raise DataError(f"{self.root} holds a batch run with other settings ({diff}); "
                            "use another --out folder")
        if old is None:
            self._write_bytes(meta, json.dumps(settings, indent=2).encode())
        committed = set(self._parts("files"))
        for name in self._parts("segments"):
            if name not in committed:
                self.fs.delete_file(self.path("segments", name))
        self.fs.delete_dir_contents(self.path("_tmp"), missing_dir_ok=True)
        return self.done()

    def done(self) -> set[str]:
        """Files recorded in ``files`` or ``errors``."""
        pq = require("pyarrow.parquet", extra="spark")
        out: set[str] = set()
        for table in ("files", "errors"):
            for name in self._parts(table):
                t = pq.read_table(self.path(table, name), columns=["file"], filesystem=self.fs)
                out.update(t.column("file").to_pylist())
        return out

    # -- committing ---------------------------------------------------------------------------
    def commit(self, tables: dict) -> str:
        """Write a part of each non-empty pyarrow table in ``tables`` (keys of :data:`TABLES`)."""
        pq = require("pyarrow.parquet", extra="spark")
        part = f"part-{uuid.uuid4().hex[:16]}.parquet"
        staged = []
        for name in TABLES:
            table = tables.get(name)
            if table is None or table.num_rows == 0:
                continue
            tmp = self.path("_tmp", f"{name}-{part}")
            pq.write_table(table, tmp, filesystem=self.fs)
            staged.append((tmp, self.path(name, part)))
        for tmp, final in staged:  # order: segments, files, errors (see the module docstring)
            self.fs.move(tmp, final)
        return part

    def read(self, table: str):
        """One table as pandas (empty DataFrame when no part is committed)."""
        pd = require("pandas", extra="spark")
        pq = require("pyarrow.parquet", extra="spark")
        parts = self._parts(table)
        if not parts:
            return pd.DataFrame()
        return pd.concat([pq.read_table(self.path(table, p), filesystem=self.fs).to_pandas() for p in parts],
                         ignore_index=True)

    # -- helpers --------------------------------------------------------------------------------
    def _read_json(self, path: str) -> dict | None:
        pafs = require("pyarrow.fs", extra="spark")
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as fh:
            try:
                return json.loads(fh.read().decode())
            except ValueError:
                raise DataError(f"{path}: unreadable (not JSON); use another --out folder") from None

    def _write_bytes(self, path: str, data: bytes) -> None:
        tmp = self.path("_tmp", f"w-{uuid.uuid4().hex[:8]}")
        with self.fs.open_output_stream(tmp) as fh:
            fh.write(data)
        self.fs.move(tmp, path)
