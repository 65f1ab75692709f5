"""RunRecord with real files: episode metrics, whole-run totals over resumed sessions,
the episodes' TensorBoard scalars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sac_ros.runtime.run_record import METRICS_FIELDS, RunRecord

NS = "/dclaw"


def session(record: RunRecord, episodes: list[tuple[int, float, int, bool, int]]) -> None:
    for episode, ret, length, success, version in episodes:
        record.add_episode(NS, [episode, ret, length, float(success), version], wall=1.0)


def counts(published: int, versions: list[int]) -> dict[str, object]:
    return {"env_steps": published, "transitions_published": published,
            "transitions_received": 0, "transitions_dropped": 0,
            "policy_versions_applied": versions, "wall_s": 2.0}  # fmt: skip


def scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run_dir / "tensorboard" / "episodes"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_a_resumed_run_continues_episodes_and_totals(tmp_path):
    first = RunRecord(tmp_path)
    session(first, [(0, -5.0, 80, False, 0), (1, -2.0, 80, True, 1)])
    first.write_summary(counts(200, [0, 1]))  # 40 steps of an unfinished episode
    first.write_metrics()

    resumed = RunRecord.resume(tmp_path)
    assert resumed.env_steps == 200 and len(resumed.episodes) == 2
    assert resumed.episodes[1] == {"robot": NS, "episode": 1, "return": -2.0, "length": 80,
                                   "success": True, "policy_version": 1, "env_steps": 160,
                                   "wall_s": 1.0}  # fmt: skip
    session(resumed, [(0, -1.0, 80, True, 2)])  # the new policy node counts from 0 again
    assert resumed.episodes[-1]["episode"] == 2 and resumed.episodes[-1]["env_steps"] == 280
    summary = resumed.write_summary(counts(90, [1, 2]))
    resumed.write_metrics()

    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert (summary["env_steps"], summary["transitions_published"]) == (290, 290)
    assert (summary["episodes"], summary["episode_steps"], summary["sessions"]) == (3, 240, 2)
    assert summary["policy_versions_applied"] == [0, 1, 2] and summary["wall_s"] == 4.0
    assert summary["final_success_rate"] == pytest.approx(2 / 3)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(METRICS_FIELDS) and len(lines) == 4
    assert RunRecord.resume(tmp_path).episodes == resumed.episodes


def test_a_file_that_is_not_episode_metrics_is_refused(tmp_path):
    (tmp_path / "metrics.csv").write_text("time,updates,alpha\n1.0,100,0.2\n")
    with pytest.raises(ValueError, match="not an episode metrics file"):
        RunRecord.resume(tmp_path)


def test_episodes_go_to_tensorboard_against_env_steps(tmp_path):
    first = RunRecord(tmp_path)
    first.open_tensorboard()
    session(first, [(0, -5.0, 80, False, 0), (1, -2.0, 80, True, 1)])
    first.close()
    first.write_summary(counts(160, [0, 1]))
    first.write_metrics()
    # A session killed before it wrote its summary: its episode at 240 is logged only.
    killed = RunRecord.resume(tmp_path)
    killed.open_tensorboard()
    session(killed, [(0, -9.0, 80, False, 1)])
    killed.close()

    resumed = RunRecord.resume(tmp_path)
    resumed.open_tensorboard()
    session(resumed, [(0, -1.0, 80, True, 1)])
    resumed.close()
    assert scalars(tmp_path, "episode/dclaw/return") == [(80, -5.0), (160, -2.0), (240, -1.0)]
    assert scalars(tmp_path, "episode/dclaw/success") == [(80, 0.0), (160, 1.0), (240, 1.0)]
    assert [s for s, _ in scalars(tmp_path, "episode/dclaw/length")] == [80, 160, 240]


def test_a_metrics_file_cut_short_or_empty_does_not_stop_a_resume(tmp_path):
    record = RunRecord(tmp_path)
    for i in range(3):
        record.add_episode("/r0", [i, 1.5, 40, 1, 3], 1.0)
    path = record.write_metrics()
    text = path.read_text()
    path.write_text(text[:-9])  # the last row cut in the middle
    assert [e["episode"] for e in RunRecord.resume(tmp_path).episodes] == [0, 1]
    path.write_text("")
    assert RunRecord.resume(tmp_path).episodes == []
    path.write_text(text.replace("1.5", "x", 1))  # a damaged row in the middle is an error
    with pytest.raises(ValueError, match="malformed row 2"):
        RunRecord.resume(tmp_path)
