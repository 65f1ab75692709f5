"""The learner's checkpoint folder: agent, replay buffer and learner state, crash-safe.

Layout of ``run_dir/checkpoint/``::

    manifest.json       which generation is current (written last; for people and tools)
    gen-000012/         one generation: everything but the replay buffer
        agent/          SACAgent.save_checkpoint (weights, optimizers, RNG states)
        learner.json    counters, inbox state, buffer stream ids, the replay size it expects
    replay/             the replay buffer's incremental save (ReplayBuffer.save): one folder
                        shared by all generations, so each checkpoint writes only new data

Saving generation N: (1) write ``.gen-N.tmp`` completely and rename it to ``gen-N``;
(2) save the replay buffer incrementally (its own ``manifest.json`` is replaced last);
(3) replace ``manifest.json``; (4) delete older generations. Every file goes through a
temporary name, fsync and os.replace, so a kill -9 (or a power cut) at any moment leaves:

* before (2) commits: the replay save of generation N-1 with ``gen-(N-1)``;
* after (2) commits, before (3): a replay save that matches the complete ``gen-N``.

Loading therefore takes the newest complete generation whose recorded replay size
(``written`` slots and ``added`` transitions) matches the replay folder: the buffer, the
agent and the inbox always come from the same moment.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sac_ros.sac.atomic import fsync_dir, read_json, write_json_atomic
from sac_ros.sac.replay import ReplayBuffer

FORMAT = "sac_ros.learner_checkpoint"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LEARNER_STATE = "learner.json"
AGENT_DIR = "agent"
REPLAY_DIR = "replay"
REPLAY_MANIFEST = "manifest.json"  # the replay save's own manifest: the commit point
_GEN_RE = re.compile(r"^gen-(\d{6,})$")


@dataclass(frozen=True)
class Loaded:
    """A consistent checkpoint found on disk."""

    generation: int
    agent_dir: Path
    replay_dir: Path
    state: dict[str, Any]  # the learner state (learner.json)


class CheckpointStore:
    """Writes and finds checkpoints in one folder (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def replay_dir(self) -> Path:
        return self.root / REPLAY_DIR

    def exists(self) -> bool:
        """Whether a checkpoint was ever committed here (the replay save commits it; the
        top manifest, written after that commit, also says so when the replay is gone)."""
        return (self.replay_dir / REPLAY_MANIFEST).exists() or (self.root / MANIFEST).exists()

    def save(
        self,
        write_agent: Callable[[Path], None],
        buffer: ReplayBuffer,
        state: dict[str, Any],
    ) -> int:
        """Write a new generation; returns its number. Raises (OSError, ValueError) on
        failure, leaving the previous checkpoint loadable."""
        self.root.mkdir(parents=True, exist_ok=True)
        generations = self._generations()
        gen = max(generations, default=0) + 1
        tmp = self.root / f".gen-{gen:06d}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            write_agent(tmp / AGENT_DIR)
            record = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "generation": gen,
                "time": time.time(),
                "replay": _replay_size(buffer),
                "learner": state,
            }
            write_json_atomic(tmp / LEARNER_STATE, record)
            fsync_dir(tmp)
            final = self.root / f"gen-{gen:06d}"
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        fsync_dir(self.root)
        try:
            buffer.save(self.replay_dir)  # commit point of generation ``gen``
        except BaseException:
            # Not committed (a full disk, say): the new generation goes, or each retry
            # would leave one more behind and a short ENOSPC would stop checkpoints for
            # good. (Committed after all, if the replay on disk is this generation's.)
            if not self._replay_is(record["replay"]):
                shutil.rmtree(final, ignore_errors=True)
            raise
        write_json_atomic(
            self.root / MANIFEST,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "generation": gen,
                "folder": final.name,
                "time": record["time"],
                "replay": record["replay"],
            },
        )
        for old in generations:
            shutil.rmtree(self.root / f"gen-{old:06d}", ignore_errors=True)
        for stale in self.root.glob(".gen-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in self.root.glob(f".{MANIFEST}.tmp-*"):  # a manifest write killed
            stale.unlink(missing_ok=True)
        return gen

    def load(self) -> Loaded | None:
        """The newest consistent checkpoint; None if none was ever committed (a crash
        during the first checkpoint leaves only an uncommitted generation).

        Raises ValueError if a checkpoint was committed but no generation matches it.
        """
        if not self.exists():
            return None
        if not (self.replay_dir / REPLAY_MANIFEST).exists():
            # Committed once (the manifest is written after the replay commit), but the
            # replay save is gone (a copy without it?): never start over silently here.
            raise ValueError(
                f"{self.root}: {MANIFEST} records a checkpoint but its replay buffer "
                f"({self.replay_dir / REPLAY_MANIFEST}) is missing"
            )
        on_disk = self._replay_on_disk()
        generations = sorted(self._generations(), reverse=True)
        problems = []
        for gen in generations:
            folder = self.root / f"gen-{gen:06d}"
            try:
                record = read_json(folder / LEARNER_STATE)
            except ValueError as err:
                problems.append(str(err))
                continue
            if not isinstance(record, dict) or record.get("format") != FORMAT:
                problems.append(f"{folder}: not a learner checkpoint")
                continue
            if record.get("format_version") != FORMAT_VERSION:
                problems.append(
                    f"{folder}: format version {record.get('format_version')}, "
                    f"this code reads {FORMAT_VERSION}"
                )
                continue
            expected = record.get("replay")
            if expected == on_disk:
                return Loaded(gen, folder / AGENT_DIR, self.replay_dir, record["learner"])
            problems.append(f"{folder}: expects replay {expected}, the replay folder has {on_disk}")
        raise ValueError(f"{self.root}: no consistent checkpoint: " + "; ".join(problems))

    # ------------------------------------------------------------------ helpers
    def _generations(self) -> list[int]:
        if not self.root.is_dir():
            return []
        return [int(m.group(1)) for p in self.root.iterdir() if (m := _GEN_RE.match(p.name))]

    def _replay_is(self, expected: dict[str, int]) -> bool:
        try:
            return self._replay_on_disk() == expected
        except (OSError, ValueError):
            return False

    def _replay_on_disk(self) -> dict[str, int]:
        path = self.replay_dir / REPLAY_MANIFEST
        manifest = read_json(path)
        if not isinstance(manifest, dict):
            raise ValueError(f"{path}: not a replay manifest")
        try:
            return {"written": int(manifest["written"]), "added": int(manifest["added"])}
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: malformed replay manifest: {err!r}") from err


def _replay_size(buffer: ReplayBuffer) -> dict[str, int]:
    return {"written": int(buffer.num_slots_written), "added": int(buffer.num_added)}
