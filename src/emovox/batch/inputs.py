"""What a batch job reads: a folder, a glob, a manifest CSV, one file, or a Hadoop-filesystem URI.

Local inputs are resolved here, on the driver, to absolute paths. Anything with a URI scheme
other than ``file:`` (``hdfs://``, ``s3a://``, ``gs://``, ``abfs://`` ...) is left to Spark: its
``binaryFile`` source lists and reads it on the executors. Timestamps come from a manifest's
``timestamp`` column, else from the file name (``2024-03-01T14-22-05``, ``20240301_142205``).
"""

from __future__ import annotations

import csv
import glob
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from ..corpora import AUDIO_EXTENSIONS
from ..errors import DataError, ParameterError

__all__ = ["BatchInput", "resolve_inputs", "parse_timestamp", "is_remote", "AUDIO_GLOB"]

#: Hadoop glob of the audio extensions, for Spark's ``pathGlobFilter``.
AUDIO_GLOB = "*.{" + ",".join(sorted(e.lstrip(".") for e in AUDIO_EXTENSIONS)) + "}"

_STAMP = re.compile(
    r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})[T_ .-]?(\d{2})[-:.h]?(\d{2})[-:.m]?(\d{2})(?!\d)"
)


@dataclass(frozen=True)
class BatchInput:
    """The resolved input of a batch job.

    ``files`` is a list of ``(file, timestamp or None)`` for local inputs; ``uri`` is set instead
    when Spark must list a remote location (``files`` is then empty).
    """

    files: list[tuple[str, str | None]]
    uri: str | None = None


def is_remote(path: str) -> bool:
    """True for a URI with a scheme other than ``file`` (a Windows drive letter is not a scheme)."""
    scheme = urlparse(str(path)).scheme
    return len(scheme) > 1 and scheme != "file"


def _local(path: str) -> str:
    return urlparse(path).path if path.startswith("file:") else path


def parse_timestamp(text: str) -> str | None:
    """An ISO timestamp (``YYYY-MM-DDTHH:MM:SS``) found in a file name, or None.

    Examples
    --------
    >>> parse_timestamp("calls/agent7_2024-03-01T14-22-05.wav")
    '2024-03-01T14:22:05'
    >>> parse_timestamp("20240301_142205.flac")
    '2024-03-01T14:22:05'
    >>> parse_timestamp("call-42.wav") is None
    True
    """
    for m in _STAMP.finditer(os.path.basename(str(text))):
        try:
            year, month, day, hour, minute, second = (int(g) for g in m.groups())
            return datetime(year, month, day, hour, minute, second).isoformat()
        except ValueError:
            continue
    return None


def _normal_stamp(value: str, where: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None).isoformat()
    except ValueError:
        stamp = parse_timestamp(value)
        if stamp is None:
            raise DataError(f"{where}: timestamp {value!r} is not ISO 8601 (e.g. 2024-03-01T14:22:05)") from None
        return stamp


def _manifest(csv_path: Path) -> list[tuple[str, str | None]]:
    out = []
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = {(f or "").strip().lower() for f in reader.fieldnames or []}
        if "path" not in fields:
            raise DataError(f"{csv_path}: manifest needs a 'path' column (has {', '.join(sorted(fields)) or 'none'})")
        for n, row in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
            raw = row["path"]
            if not raw:
                continue
            if is_remote(raw):
                path = raw
            else:
                p = Path(_local(raw))
                path = os.path.abspath(p if p.is_absolute() else csv_path.parent / p)
            stamp = _normal_stamp(row.get("timestamp", ""), f"{csv_path}:{n}") or parse_timestamp(path)
            out.append((path, stamp))
    return out


def _walk(root: Path) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                     if Path(f).suffix.lower() in AUDIO_EXTENSIONS and not f.startswith("."))
    return [os.path.abspath(p) for p in found]


def resolve_inputs(source: str | os.PathLike) -> BatchInput:
    """Resolve INPUT of ``emovox batch`` (see the module docstring).

    A folder yields its audio files (recursively, by extension); a glob yields every file it
    matches (``**`` recurses); a ``.csv`` file is a manifest with a ``path`` column (relative
    paths are relative to the CSV; optional ``timestamp``); any other file is taken as audio.
    Duplicates are dropped, first occurrence kept.

    Raises
    ------
    DataError
        Nothing matched, or the manifest is malformed.
    """
    text = os.fspath(source)
    if is_remote(text):
        return BatchInput([], uri=text)
    local = _local(text)
    path = Path(local)
    if path.is_dir():
        files = [(p, parse_timestamp(p)) for p in _walk(path)]
    elif path.is_file() and path.suffix.lower() == ".csv":
        files = _manifest(path)
    elif path.is_file():
        files = [(os.path.abspath(path), parse_timestamp(local))]
    elif glob.has_magic(local):
        matches = sorted(p for p in glob.glob(local, recursive=True) if os.path.isfile(p))
        files = [(os.path.abspath(p), parse_timestamp(p)) for p in matches]
    else:
        raise DataError(f"{text}: no such file, folder or glob")
    seen: dict[str, str | None] = {}
    for f, stamp in files:
        seen.setdefault(f, stamp)
    if not seen:
        raise DataError(f"{text}: no audio files found")
    return BatchInput(list(seen.items()))


def check_out(out: str | os.PathLike) -> str:
    """The output folder as a string; refuses a path that is an existing file."""
    text = os.fspath(out)
    if not is_remote(text) and Path(_local(text)).is_file():
        raise ParameterError(f"--out {text!r} is a file; give a folder")
    return text
