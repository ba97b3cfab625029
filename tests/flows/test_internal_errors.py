"""An internal error (a bug, not a user's input) in ``python flows/daemon.py``: the terminal gets
no traceback, the log file gets all of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otonom_trader.config.compose import PROJECT_ROOT

# Runs flows/daemon.py as __main__ with a bug injected into a step the flow body calls directly
# (not inside a retried task), so the run fails at once.
INJECT_BUG = """
import runpy, sys
import otonom_trader.daemon.steps as steps
def broken(*args, **kwargs):
    raise RuntimeError("injected bug")
steps.describe_signals = broken
sys.argv = [sys.argv[0], *sys.argv[1:]]
runpy.run_path({flow!r}, run_name="__main__")
"""


@pytest.mark.slow
@pytest.mark.prefect
def test_an_internal_error_prints_one_line_and_leaves_the_traceback_in_the_log_file(
    tmp_path: Path,
) -> None:
    # Arrange
    home = tmp_path / "home"
    env = {**os.environ, "OTONOM_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    code = INJECT_BUG.format(flow=str(PROJECT_ROOT / "flows" / "daemon.py"))

    # Act
    result = subprocess.run(
        [sys.executable, "-c", code, "alerts.enabled=false"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    # Assert
    log_file = home / "logs" / "otonom-trader.log"
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cycle failed: RuntimeError: injected bug (traceback in {log_file})" in result.stderr
    assert "Traceback" in log_file.read_text() and "injected bug" in log_file.read_text()
