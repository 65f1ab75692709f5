"""Crash-safe file writes: write a temporary file, flush it to disk, then os.replace it.

A reader sees either the old file or the new one, never a half-written file, even if the
process or the machine dies in between (robots fail; training must resume).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sac_ros.sac.untrusted import loads


def write_atomic(path: Path, writer: Callable[[IO[bytes]], None], sync: bool = True) -> None:
    """Create ``path`` through ``writer(file)`` on a temporary sibling, then rename it.
    ``sync=False`` skips the flushes to disk: still whole or absent after the process
    dies, but not after the machine does (for small, frequent records)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            writer(handle)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if sync:
        fsync_dir(path.parent)


def write_bytes_atomic(path: Path, data: bytes, sync: bool = True) -> None:
    write_atomic(path, lambda handle: handle.write(data), sync)


def write_json_atomic(path: Path, obj: Any, sync: bool = True) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True)
    write_bytes_atomic(path, text.encode("utf-8"), sync)


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or malformed file raises ValueError naming it."""
    try:
        return loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"{path} does not exist") from err
    except ValueError as err:  # not UTF-8, not JSON, nested too deeply
        raise ValueError(f"{path} is not valid JSON: {err}") from err


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
