"""Parsing what came from elsewhere (a network message, a file of unknown origin) so that
every defect is a ValueError the caller reports: JSON nested deep enough to exhaust
Python's recursion limit makes json raise RecursionError, which no ``except ValueError``
catches and which would stop the node; safetensors bytes may be truncated or carry an
oversized or non-JSON header."""

from __future__ import annotations

import json
from typing import Any

MAX_HEADER = 1 << 20  # bytes: a policy's header is about 2 KB, a transition batch's less


def loads(text: str | bytes) -> Any:
    """json.loads, with input nested too deeply a ValueError too."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def read_metadata(data: bytes, error: type[ValueError], what: str) -> dict[str, str]:
    """``__metadata__`` of the safetensors bytes ``data`` ({} when there is none); any
    defect raises ``error`` naming ``what`` the bytes were meant to be."""
    if len(data) < 8:
        raise error(f"{what} of {len(data)} bytes is too short for safetensors (truncated)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > MAX_HEADER:
        raise error(f"{what}: a safetensors header of {header_len} bytes (at most {MAX_HEADER})")
    if header_len > len(data) - 8:
        raise error(f"truncated {what}: header says {header_len} bytes, {len(data) - 8} follow")
    try:
        header = loads(bytes(data[8 : 8 + header_len]))
    except ValueError as exc:
        raise error(f"{what}: malformed safetensors header: {str(exc)[:200]}") from exc
    if not isinstance(header, dict):
        raise error(f"{what}: malformed safetensors header: not a JSON object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise error(f"{what}: safetensors metadata must map names to strings")
    return meta
