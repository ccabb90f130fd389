"""Crash-safe files: every result file is written whole or not at all, and only inside its folder.

A sweep can be killed at any moment. Each file is written to a temporary name in the same folder (a dot
name, which Parquet readers skip), flushed, fsynced and renamed over its final name with ``os.replace``,
which is atomic on POSIX file systems. A reader therefore sees either the old file or the new one. What
remains possible is a file damaged afterwards (truncated copy, full disk, a flipped bit): each completion
marker records the size and sha256 of every table it lists (``write_table``), ``table_damage`` compares
them, and the run owning a damaged table is redone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(name: str, fallback: str = "run") -> str:
    """``name`` as one safe path component: only ``[A-Za-z0-9._-]``, no leading dot, never ``..``."""
    text = _SAFE.sub("_", str(name)).lstrip(".")
    return text or fallback


def inside(root: Path, path: Path) -> Path:
    """``path`` if it resolves inside ``root``; anything else is refused."""
    root_r, path_r = root.resolve(), path.resolve()
    if path_r != root_r and root_r not in path_r.parents:
        raise ValueError(f"refusing to write {path} outside the output folder {root}")
    return path


def write_bytes_atomic(path: Path, data: bytes) -> int:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename; returns the size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return len(data)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> int:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=True)
    return write_bytes_atomic(path, (text + "\n").encode())


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_parquet_atomic(path: Path, frame: pd.DataFrame) -> int:
    """Write a DataFrame (index dropped) as one Parquet file; returns its size in bytes."""
    return write_bytes_atomic(path, parquet_bytes(frame))


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def write_table(path: Path, frame: pd.DataFrame) -> dict[str, Any]:
    """Write a table and return what a completion marker records of it: size and sha256 of its bytes."""
    data = parquet_bytes(frame)
    return {"size": write_bytes_atomic(path, data), "sha256": hashlib.sha256(data).hexdigest()}


def table_damage(path: Path, record: Any) -> str | None:
    """Why the table at ``path`` is not the one a marker recorded (``{size, sha256}``); None if it is."""
    if not isinstance(record, dict) or "sha256" not in record:
        return "its marker records no checksum"
    try:
        data = path.read_bytes()
    except OSError:
        return "it is missing"
    if len(data) != record.get("size"):
        return f"it has {len(data)} bytes, not the {record.get('size')} recorded"
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        return "its sha256 differs from the one recorded"
    return None


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON mapping in ``path``, or None when it is missing, truncated or not a mapping."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_stale_temps(folder: Path) -> None:
    """Delete temporary files a killed writer left behind in ``folder`` (not below)."""
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
