"""Incremental persistence of a :class:`~sac_ros.sac.replay.ReplayBuffer`.

A save directory holds ``manifest.json`` and chunk files ``chunk_NNNNNN.npz`` (uncompressed
.npy arrays in a zip). Each chunk holds a contiguous run of ring slots [start, end) that
never wraps around the ring, the links made since the previous save for slots saved
earlier (a pending step whose next observation arrived later), and the streams' pending
steps at save time. ``save`` writes only the slots written since the last save to the same
directory, so saving every few minutes costs little even with gigabytes of images (the
lesson of softlearning's image checkpoints). Chunks whose slots have all been overwritten
since are dropped from the manifest and deleted.

Every file is written atomically (temporary file, fsync, os.replace); the manifest is
written last, so a crash leaves the previous consistent save. Chunks no manifest lists (a
save that failed or was killed) are deleted by the next save, and by a failing one at once.
Loading never unpickles (``np.load(..., allow_pickle=False)``) and checks every array's
shape and dtype.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sac_ros.sac.atomic import read_json, write_atomic, write_json_atomic
from sac_ros.sac.replay import NO_NEXT, Frame, Pending
from sac_ros.sac.spec import ObsSpec

if TYPE_CHECKING:
    from sac_ros.sac.replay import ReplayBuffer

FORMAT = "sac_ros.replay"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_CHUNK_RE = re.compile(r"^chunk_(\d{6,})\.npz$")
# sac_ros.sac.atomic's temporary names: a process killed while writing leaves one behind
_TMP_RE = re.compile(r"^\.(chunk_\d{6,}\.npz|manifest\.json)\.tmp-\d+$")


def save_buffer(buf: ReplayBuffer, directory: Path) -> int:
    """Save ``buf`` into ``directory`` (incrementally when it holds this buffer's last
    save); returns the number of slots written."""
    directory.mkdir(parents=True, exist_ok=True)
    resolved = directory.resolve()
    written, capacity = buf._written, buf.capacity
    live_start = max(0, written - capacity)
    manifest = _try_manifest(directory)
    incremental = (
        manifest is not None
        and buf._saved_dir == resolved
        and manifest.get("written") == buf._saved_upto
        and all((directory / c["file"]).exists() for c in manifest.get("chunks", []))
    )
    if incremental:
        assert manifest is not None
        start = max(buf._saved_upto, live_start)
        links = [(s, d) for s, d in buf._relinked if s >= live_start]
        chunks = [c for c in manifest["chunks"] if c["end"] > live_start]
    else:
        start, links, chunks = live_start, [], []

    # What a failed or killed save left (a full disk needs the room).
    _remove_unlisted(directory, _listed(directory, manifest))
    seq = _next_sequence(directory)
    runs = _contiguous_runs(start, written, capacity)
    if not runs and links:  # links but no new slot: still needs a chunk to carry them
        runs = [(written, written)]
    try:
        for i, (run_start, run_end) in enumerate(runs):
            name = f"chunk_{seq:06d}.npz"
            seq += 1
            arrays = _chunk_arrays(buf, run_start, run_end)
            last = i == len(runs) - 1
            arrays.update(_link_arrays(links if last else []))
            arrays.update(_pending_arrays(buf) if last else _pending_arrays(None, buf.spec))
            write_atomic(directory / name, lambda handle, a=arrays: _savez(handle, a))
            chunks.append({"file": name, "start": run_start, "end": run_end})

        write_json_atomic(
            directory / MANIFEST,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "spec": buf.spec.to_json(),
                "action_dim": buf.action_dim,
                "capacity": capacity,
                "written": written,
                "added": buf._added,
                "chunks": chunks,
                "rng": buf._rng.bit_generator.state,
            },
        )
    except BaseException:
        # Not saved: the chunks of this attempt go (unless the manifest got written after
        # all and lists them), so a full disk is not filled further by each retry.
        _remove_unlisted(directory, _listed(directory, _try_manifest(directory)))
        raise
    _remove_unlisted(directory, {c["file"] for c in chunks})
    buf._saved_dir, buf._saved_upto, buf._relinked = resolved, written, []
    return sum(end - begin for begin, end in runs)


def _listed(directory: Path, manifest: dict[str, Any] | None) -> set[str] | None:
    """The chunk files ``manifest`` (the one in ``directory``, as read) lists: none where
    there is no manifest, None (unknown) where there is one that cannot be read."""
    if manifest is None:
        return None if (directory / MANIFEST).exists() else set()
    chunks = manifest.get("chunks")
    if not isinstance(chunks, list):
        return None
    return {str(c.get("file")) for c in chunks if isinstance(c, dict)}


def _remove_unlisted(directory: Path, keep: set[str] | None) -> None:
    """Delete the chunk files not in ``keep``, and temporary files; nothing where what to
    keep is unknown (None), to be safe."""
    if keep is None:
        return
    for path in directory.iterdir():
        if (_CHUNK_RE.match(path.name) and path.name not in keep) or _TMP_RE.match(path.name):
            path.unlink(missing_ok=True)


def load_buffer(buf: ReplayBuffer, directory: Path) -> None:
    """Restore exactly what ``save_buffer`` wrote into ``directory``. On a malformed save
    it raises ValueError and leaves the buffer empty (never half-loaded)."""
    manifest = read_json(directory / MANIFEST)
    _check_manifest(buf, manifest, directory)
    try:
        _load_chunks(buf, directory, manifest)
    except Exception:
        buf.clear()
        raise


def _load_chunks(buf: ReplayBuffer, directory: Path, manifest: dict[str, Any]) -> None:
    capacity = buf.capacity
    buf._next[:] = NO_NEXT
    buf._pending = {}
    pending: dict[int, Pending] = {}
    expected_start: int | None = None
    for chunk in manifest["chunks"]:
        start, end = int(chunk["start"]), int(chunk["end"])
        if expected_start is not None and start != expected_start:
            raise ValueError(f"{directory}: chunk {chunk['file']} does not follow the previous")
        expected_start = end
        try:
            with np.load(directory / chunk["file"], allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"{directory}: chunk {chunk['file']} is unreadable: {err}") from err
        _check_chunk(buf, arrays, start, end, chunk["file"])
        if end > start:
            sl = slice(start % capacity, (end - 1) % capacity + 1)
            if buf._image is not None:
                buf._image[sl] = arrays["image"]
            for name in ("vector", "action", "reward", "terminated", "truncated", "next"):
                getattr(buf, f"_{name}")[sl] = arrays[name]
        links = zip(arrays["link_src"].tolist(), arrays["link_dst"].tolist(), strict=True)
        for src, dst in links:
            buf._next[src % capacity] = dst
        pending = _read_pending(arrays)
    written = int(manifest["written"])
    if manifest["chunks"] and expected_start != written:
        raise ValueError(f"{directory}: chunks end at {expected_start}, manifest says {written}")
    if manifest["chunks"] and manifest["chunks"][0]["start"] > max(0, written - capacity):
        raise ValueError(f"{directory}: the first chunk starts after the oldest live slot")
    buf._written = written
    buf._added = int(manifest["added"])
    buf._valid = int(np.count_nonzero(buf._next != NO_NEXT))
    buf._pending = pending
    try:
        buf._rng.bit_generator.state = manifest["rng"]
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"{directory}: bad random generator state: {err}") from err
    buf._saved_dir, buf._saved_upto, buf._relinked = directory.resolve(), written, []


# ---------------------------------------------------------------------- helpers
def _contiguous_runs(start: int, end: int, capacity: int) -> list[tuple[int, int]]:
    """Split absolute slots [start, end) so that no run wraps around the ring."""
    runs = []
    while start < end:
        stop = min(end, (start // capacity + 1) * capacity)
        runs.append((start, stop))
        start = stop
    return runs


def _chunk_arrays(buf: ReplayBuffer, start: int, end: int) -> dict[str, np.ndarray]:
    capacity = buf.capacity
    sl = slice(start % capacity, start % capacity + (end - start))
    arrays = {
        "range": np.array([start, end], np.int64),
        "vector": buf._vector[sl],
        "action": buf._action[sl],
        "reward": buf._reward[sl],
        "terminated": buf._terminated[sl],
        "truncated": buf._truncated[sl],
        "next": buf._next[sl],
    }
    if buf._image is not None:
        arrays["image"] = buf._image[sl]
    return arrays


def _link_arrays(links: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    src = np.array([s for s, _ in links], np.int64)
    dst = np.array([d for _, d in links], np.int64)
    return {"link_src": src, "link_dst": dst}


def _pending_arrays(buf: ReplayBuffer | None, spec: ObsSpec | None = None) -> dict[str, Any]:
    items = sorted(buf._pending.items()) if buf is not None else []
    spec = buf.spec if buf is not None else spec
    assert spec is not None
    arrays: dict[str, Any] = {
        "pending_stream": np.array([k for k, _ in items], np.int64),
        "pending_slot": np.array([p.slot for _, p in items], np.int64),
        "pending_vector": np.array([p.next_frame.vector for _, p in items], np.float32).reshape(
            len(items), spec.vector_dim
        ),
    }
    if spec.image_shape is not None:
        arrays["pending_image"] = np.array(
            [p.next_frame.image for _, p in items], np.uint8
        ).reshape(len(items), *spec.image_shape)
    return arrays


def _read_pending(arrays: dict[str, np.ndarray]) -> dict[int, Pending]:
    pending = {}
    for i, stream in enumerate(arrays["pending_stream"].tolist()):
        image = arrays["pending_image"][i].copy() if "pending_image" in arrays else None
        frame = Frame(image, arrays["pending_vector"][i].copy())
        pending[int(stream)] = Pending(int(arrays["pending_slot"][i]), frame)
    return pending


def _savez(handle: Any, arrays: dict[str, np.ndarray]) -> None:
    # Uncompressed: images barely compress and speed matters. A file object, because
    # np.savez appends ".npz" to a string name.
    np.savez(handle, **arrays)


def _next_sequence(directory: Path) -> int:
    numbers = [int(m.group(1)) for p in directory.iterdir() if (m := _CHUNK_RE.match(p.name))]
    return max(numbers, default=0) + 1


def _try_manifest(directory: Path) -> dict[str, Any] | None:
    if not (directory / MANIFEST).exists():
        return None
    try:
        manifest = read_json(directory / MANIFEST)
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) else None


def _check_manifest(buf: ReplayBuffer, manifest: Any, directory: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{directory}: not a sac_ros replay buffer save")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{directory}: format version {manifest.get('format_version')}, "
            f"this code reads {FORMAT_VERSION}"
        )
    required = {"spec", "action_dim", "capacity", "written", "added", "chunks", "rng"}
    if missing := required - set(manifest):
        raise ValueError(f"{directory}: manifest lacks {sorted(missing)}")
    if ObsSpec.from_json(manifest["spec"]) != buf.spec:
        raise ValueError(f"{directory}: saved spec {manifest['spec']} != {buf.spec.to_json()}")
    if manifest["action_dim"] != buf.action_dim or manifest["capacity"] != buf.capacity:
        raise ValueError(
            f"{directory}: saved action_dim {manifest['action_dim']} / capacity "
            f"{manifest['capacity']}, this buffer has {buf.action_dim} / {buf.capacity}"
        )
    for chunk in manifest["chunks"]:
        if not isinstance(chunk, dict) or not _CHUNK_RE.match(str(chunk.get("file", ""))):
            raise ValueError(f"{directory}: malformed chunk entry {chunk!r}")


def _check_chunk(
    buf: ReplayBuffer, arrays: dict[str, np.ndarray], start: int, end: int, name: str
) -> None:
    size = end - start
    wraps = size > 0 and start // buf.capacity != (end - 1) // buf.capacity
    if size < 0 or size > buf.capacity or wraps:
        raise ValueError(f"chunk {name}: bad slot range [{start}, {end})")
    spec = buf.spec
    expected: dict[str, tuple[tuple[int, ...], type]] = {
        "range": ((2,), np.int64),
        "vector": ((size, spec.vector_dim), np.float32),
        "action": ((size, buf.action_dim), np.float32),
        "reward": ((size,), np.float32),
        "terminated": ((size,), np.bool_),
        "truncated": ((size,), np.bool_),
        "next": ((size,), np.int64),
    }
    if spec.image_shape is not None:
        expected["image"] = ((size, *spec.image_shape), np.uint8)
    for key, (shape, dtype) in expected.items():
        if key not in arrays:
            raise ValueError(f"chunk {name}: missing array {key}")
        if arrays[key].shape != shape or arrays[key].dtype != dtype:
            raise ValueError(
                f"chunk {name}: {key} is {arrays[key].dtype}{arrays[key].shape}, "
                f"expected {np.dtype(dtype)}{shape}"
            )
    if arrays["range"].tolist() != [start, end]:
        held = arrays["range"].tolist()
        raise ValueError(f"chunk {name}: holds slots {held}, the manifest says [{start}, {end})")
    for key in ("link_src", "link_dst", "pending_stream", "pending_slot", "pending_vector"):
        if key not in arrays:
            raise ValueError(f"chunk {name}: missing array {key}")
