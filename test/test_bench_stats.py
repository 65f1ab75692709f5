"""The benchmarks' seed-paired comparison (bench/common.paired_comparison)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import paired_comparison


def test_a_difference_within_seed_noise_is_not_worse_but_not_at_least():
    # Differences -0.3, +0.1, -0.9: mean -0.3667, sd 0.5033, se 0.2906; t(2) = 2.920.
    result = paired_comparison([-125.1, -123.9, -125.0], [-124.8, -124.0, -124.1])
    assert result["diff"] == pytest.approx(-0.3667, abs=1e-4)
    assert result["se"] == pytest.approx(0.2906, abs=1e-4)
    assert result["not_worse"] and not result["mean_at_least"]


def test_a_consistent_deficit_is_worse():
    result = paired_comparison([0.50, 0.52, 0.49], [0.60, 0.61, 0.58])
    assert result["diff"] < 0 and not result["not_worse"]


def test_lower_is_better_flips_the_sign():
    result = paired_comparison([0.02, 0.03], [0.05, 0.06], higher_is_better=False)
    assert result["diff"] == pytest.approx(0.03) and result["mean_at_least"]
    assert result["not_worse"]


def test_seeds_must_pair_up():
    with pytest.raises(ValueError):
        paired_comparison([1.0, 2.0], [1.0])
    single = paired_comparison([1.0], [2.0])  # one seed: no spread, the plain comparison
    assert single["se"] == 0.0 and not single["not_worse"]
