"""A representative subset of the corpus as real processes: ``python flows/daemon.py …`` and
``python -m otonom_trader.cli …`` with a fresh ``OTONOM_HOME`` that must not come into being.

The in-process run (``test_corpus.py``) covers every case; this one proves the same holds for a
real process: its exit status, its stderr as the user sees it (Python's own warnings and
Prefect's logging included), and a home directory that stays absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from otonom_trader.config.compose import PROJECT_ROOT

from .conftest import Workspace, assert_one_line_refusal
from .corpus import SUBPROCESS_CASES, Case

# Far above the ~1 s a refusal takes; far below the 6–12 s a temporary Prefect server needs to
# start, so a case that reached Prefect fails here even before its output is read.
REFUSAL_SECONDS = 5.0


def _command(case: Case, ws: Workspace) -> list[str]:
    if case.entry == "flow":
        return [sys.executable, str(PROJECT_ROOT / "flows" / "daemon.py"), *ws.argv(case)]
    return [sys.executable, "-m", "otonom_trader.cli", *ws.argv(case)]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=lambda case: case.id)
def test_bad_input_in_a_real_process_is_refused_before_anything_starts(
    case: Case, make_workspace: Callable[[Case, bool], Workspace]
) -> None:
    # Arrange: no home yet (a refused input must not create it)
    ws = make_workspace(case, True)
    before = ws.snapshot()
    env = {**os.environ, "OTONOM_HOME": str(ws.home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)

    # Act
    started = time.perf_counter()
    result = subprocess.run(
        _command(case, ws), cwd=ws.work, env=env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.perf_counter() - started

    # Assert
    assert_one_line_refusal(case, result.returncode, result.stdout, result.stderr)
    assert not ws.home.exists(), f"{ws.home} was created"
    assert ws.snapshot() == before
    for path in case.outside:
        assert not Path(path).exists(), f"{path} was created"
    assert elapsed < REFUSAL_SECONDS, f"refusal took {elapsed:.1f} s"


def test_the_subset_covers_every_category_and_both_entry_points() -> None:
    assert 20 <= len(SUBPROCESS_CASES) <= 40
    assert {c.category for c in SUBPROCESS_CASES} == {
        "overrides",
        "strategy",
        "broker",
        "alerts",
        "cli",
        "csv",
        "database",
    }
    assert {c.entry for c in SUBPROCESS_CASES} == {"flow", "cli"}
