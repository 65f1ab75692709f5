"""Lint is a test: ruff over the whole package, tests and benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a test dependency (requirements/test.txt)"
    result = subprocess.run([ruff, "check", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_make_bench_runs_every_benchmark_and_no_helper() -> None:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = next(x for x in text.splitlines() if x.startswith("BENCHES :="))
    listed = set(line.split(":=", 1)[1].split())
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py")}
    assert listed == scripts - {"common", "echo_node"}  # helpers: one never returns
