"""What a training run leaves in its directory: metrics.csv, summary.json, curve.png.

Fed by the ``sac-ros train`` monitor with each finished episode (from every robot's
``sac/episode``) and the learner's statistics; no ROS here.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sac_ros.sac.atomic import write_json_atomic

EPISODE_FIELDS = ("robot", "episode", "return", "length", "success", "policy_version")


@dataclass
class RunRecord:
    run_dir: Path
    episodes: list[dict[str, Any]] = field(default_factory=list)
    learner: dict[str, float] = field(default_factory=dict)
    wall_start: float = 0.0

    def add_episode(self, robot: str, values: list[float], env_steps: int, wall: float) -> None:
        episode, ret, length, success, version = (list(values) + [math.nan] * 5)[:5]
        self.episodes.append(
            {
                "robot": robot,
                "episode": int(episode),
                "return": float(ret),
                "length": int(length),
                "success": bool(success > 0.5),
                "policy_version": int(version),
                "env_steps": int(env_steps),
                "wall_s": round(wall - self.wall_start, 3),
            }
        )

    @property
    def env_steps(self) -> int:
        return sum(e["length"] for e in self.episodes)

    def recent(self, n: int = 20) -> tuple[float, float]:
        """Mean return and success rate of the last ``n`` episodes (nan when none)."""
        last = self.episodes[-n:]
        if not last:
            return math.nan, math.nan
        return (
            float(np.mean([e["return"] for e in last])),
            float(np.mean([e["success"] for e in last])),
        )

    def write_metrics(self) -> Path:
        path = self.run_dir / "metrics.csv"
        fields = [*EPISODE_FIELDS, "env_steps", "wall_s"]
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.episodes)
        tmp.replace(path)
        return path

    def write_summary(self, extra: dict[str, Any]) -> Path:
        ret, success = self.recent(20)
        summary = {
            "episodes": len(self.episodes),
            "recent_return": ret,
            "final_success_rate": success,
            "updates": int(self.learner.get("updates", 0)),
            "policy_version": int(self.learner.get("policy_version", -1)),
            **extra,
        }
        path = self.run_dir / "summary.json"
        write_json_atomic(path, summary)
        return path

    def write_curve(self, title: str) -> Path | None:
        """Return and success rate against environment steps (moving average)."""
        if not self.episodes:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = np.cumsum([e["length"] for e in self.episodes])
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
