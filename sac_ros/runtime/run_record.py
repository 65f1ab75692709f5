"""What a training run leaves in its directory: metrics.csv, summary.json, curve.png and
the episodes' TensorBoard scalars.

Fed by the ``sac-ros train`` monitor with each finished episode (from every robot's
``sac/episode``) and the learner's statistics; no ROS here. ``metrics.csv`` has one row
per episode (the learner writes its own statistics to ``learner_stats.csv``). A resumed
run (:meth:`RunRecord.resume`) starts from the episodes (metrics.csv) and totals
(summary.json) its earlier sessions left, so what it writes covers the whole run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sac_ros.sac.atomic import write_bytes_atomic, write_json_atomic

METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
EPISODE_EVENTS = "episodes"  # TensorBoard folder inside the learner's tensorboard/
EPISODE_FIELDS = ("robot", "episode", "return", "length", "success", "policy_version")
METRICS_FIELDS = (*EPISODE_FIELDS, "env_steps", "wall_s")
# summary.json counts that add up over the sessions of a resumed run
SESSION_COUNTS = ("env_steps", "transitions_published", "transitions_dropped")
_CASTS: dict[str, Callable[[str], Any]] = {
    "robot": str,
    "episode": int,
    "return": float,
    "length": int,
    "success": lambda text: text.strip().lower() in ("true", "1"),
    "policy_version": int,
    "env_steps": int,
    "wall_s": float,
}


def read_episodes(path: Path) -> list[dict[str, Any]]:
    """The episode rows of a metrics.csv ([] when there is none, or it is empty). A last
    row cut short (a file from before writes were atomic, or a copy cut off) is left out."""
    if not path.exists():
        return []
    with open(path, newline="", errors="replace") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            return []  # empty
        missing = set(METRICS_FIELDS) - set(reader.fieldnames)
        if missing:
            raise ValueError(f"{path} is not an episode metrics file: no {sorted(missing)}")
        rows = list(reader)
    episodes = []
    for i, row in enumerate(rows):
        try:
            episodes.append({k: _CASTS[k](row[k]) for k in METRICS_FIELDS})
        except (TypeError, ValueError) as err:
            if i == len(rows) - 1:
                break  # torn at the end
            raise ValueError(f"{path}: malformed row {i + 2}: {err}") from err
    return episodes


@dataclass
class RunRecord:
    """Episodes of the whole run; ``previous`` is the summary.json of earlier sessions."""

    run_dir: Path
    episodes: list[dict[str, Any]] = field(default_factory=list)
    learner: dict[str, float] = field(default_factory=dict)
    wall_start: float = 0.0
    previous: dict[str, Any] = field(default_factory=dict)
    steps_before: int = field(init=False)  # environment steps of the earlier sessions
    _session_steps: int = field(init=False, default=0)
    _episode_offset: dict[str, int] = field(init=False, default_factory=dict)
    _board: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        last = self.episodes[-1]["env_steps"] if self.episodes else 0
        self.steps_before = int(self.previous.get("env_steps", last))
        for e in self.episodes:  # a robot's episodes go on numbering where they stopped
            self._episode_offset[e["robot"]] = max(
                self._episode_offset.get(e["robot"], 0), e["episode"] + 1
            )

    @classmethod
    def resume(cls, run_dir: Path, wall_start: float = 0.0) -> RunRecord:
        """Continue the run in ``run_dir`` from what its earlier sessions wrote."""
        summary = run_dir / SUMMARY_JSON
        previous = json.loads(summary.read_text()) if summary.exists() else {}
        episodes = read_episodes(run_dir / METRICS_CSV)
        return cls(run_dir, episodes, wall_start=wall_start, previous=previous)

    def count_earlier_steps(self, steps: int) -> None:
        """The earlier sessions took at least ``steps`` environment steps (the learner's
        checkpoint says so, where a killed session wrote no summary)."""
        if steps > self.steps_before:
            self.steps_before = steps
            self.previous["env_steps"] = steps

    def add_episode(self, robot: str, values: list[float], wall: float) -> None:
        """One ``sac/episode`` message: [episode, return, length, success, version]."""
        episode, ret, length, success, version = (list(values) + [math.nan] * 5)[:5]
        self._session_steps += int(length)
        row = {
            "robot": robot,
            "episode": int(episode) + self._episode_offset.get(robot, 0),
            "return": float(ret),
            "length": int(length),
            "success": bool(success > 0.5),
            "policy_version": int(version),
            "env_steps": self.env_steps,  # all robots, whole run, at this episode's end
            "wall_s": round(float(self.previous.get("wall_s", 0.0)) + wall - self.wall_start, 3),
        }
        self.episodes.append(row)
        if self._board is not None:
            self._log_episode(row)

    @property
    def env_steps(self) -> int:
        """Earlier sessions' steps plus the steps of this session's finished episodes."""
        return self.steps_before + self._session_steps

    def recent(self, n: int = 20) -> tuple[float, float]:
        """Mean return and success rate of the last ``n`` episodes (nan when none)."""
        last = self.episodes[-n:]
        if not last:
            return math.nan, math.nan
        return (
            float(np.mean([e["return"] for e in last])),
            float(np.mean([e["success"] for e in last])),
        )

    def open_tensorboard(self) -> None:
        """Write each episode's return, length and success as TensorBoard scalars (per
        robot, against environment steps) next to the learner's events."""
        from torch.utils.tensorboard import SummaryWriter

        from sac_ros.runtime.learner import TENSORBOARD_DIR

        # purge_step drops what a killed session logged beyond the totals it resumes from
        # (every new episode ends after steps_before).
        self._board = SummaryWriter(
            str(self.run_dir / TENSORBOARD_DIR / EPISODE_EVENTS),
            purge_step=self.steps_before + 1 if self.steps_before else None,
            flush_secs=10,
        )

    def _log_episode(self, row: dict[str, Any]) -> None:
        for key in ("return", "length", "success"):
            tag = f"episode{row['robot']}/{key}"
            self._board.add_scalar(tag, float(row[key]), row["env_steps"])

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None

    def write_metrics(self) -> Path:
        path = self.run_dir / METRICS_CSV
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=METRICS_FIELDS)
        writer.writeheader()
        writer.writerows(self.episodes)
        write_bytes_atomic(path, text.getvalue().encode("utf-8"))
        return path

    def whole_run(self, session: dict[str, Any]) -> dict[str, Any]:
        """This session's counts (``SESSION_COUNTS``, ``wall_s``, the policy versions
        applied) added to those of the earlier sessions."""
        out = dict(session)
        for key in SESSION_COUNTS:
            if key in session:
                out[key] = int(self.previous.get(key, 0)) + int(session[key])
        if "wall_s" in session:
            out["wall_s"] = round(float(self.previous.get("wall_s", 0.0)) + session["wall_s"], 1)
        versions = [*self.previous.get("policy_versions_applied", [])]
        versions += session.get("policy_versions_applied", [])
        out["policy_versions_applied"] = sorted(set(versions))
        out["sessions"] = int(self.previous.get("sessions", 1 if self.previous else 0)) + 1
        return out

    def write_summary(self, session: dict[str, Any]) -> dict[str, Any]:
        """summary.json of the whole run (returned); ``session`` holds this session's
        counts."""
        ret, success = self.recent(20)
        summary = {
            "episodes": len(self.episodes),
            "episode_steps": sum(e["length"] for e in self.episodes),
            "recent_return": ret,
            "final_success_rate": success,
            "updates": int(self.learner.get("updates", 0)),
            "policy_version": int(self.learner.get("policy_version", -1)),
            **self.whole_run(session),
        }
        write_json_atomic(self.run_dir / SUMMARY_JSON, summary)
        return summary

    def write_curve(self, title: str) -> Path | None:
        """Return and success rate against environment steps (moving average)."""
        if not self.episodes:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = np.array([e["env_steps"] for e in self.episodes])
        k = max(1, min(20, len(self.episodes) // 5))
        kernel = np.ones(k) / k
        ret = np.convolve([e["return"] for e in self.episodes], kernel, mode="valid")
        suc = np.convolve([float(e["success"]) for e in self.episodes], kernel, mode="valid")
        x = steps[k - 1 :]
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
        a1.plot(x, ret)
        a1.set_ylabel(f"episode return (mean of {k})")
        a1.set_title(title)
        a2.plot(x, suc)
        a2.set_ylabel("success rate")
        a2.set_ylim(-0.05, 1.05)
        a2.set_xlabel("environment steps")
        for a in (a1, a2):
            a.grid(alpha=0.3)
        fig.tight_layout()
        path = self.run_dir / "curve.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
