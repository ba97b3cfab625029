"""Smoke test of the guard_check benchmark at tiny sizes (the real run is by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_guard_check  # noqa: E402


def test_benchmark_fills_history_and_prints_medians_and_ratio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = bench_guard_check.main(["--sizes", "50", "500", "--evals", "20", "--sqlite-only"])

    out = capsys.readouterr().out
    assert status == 0
    assert "SQLite" in out and "500" in out and "×" in out
