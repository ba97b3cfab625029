"""Fast start: importing the daemon, and a PAPER cycle with no alert channel configured, load
neither ccxt nor Apprise (each is imported by the code that needs it, when it needs it).

Each case runs a fresh interpreter: what an earlier test imported must not hide an eager import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from otonom_trader.config.compose import PROJECT_ROOT

BASELINE = PROJECT_ROOT / "strategies" / "baseline_v1.0.yaml"


def _imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_import_daemon_when_fresh_interpreter_then_neither_ccxt_nor_apprise() -> None:
    code = (
        "import otonom_trader.daemon; import sys; "
        "print('ccxt' in sys.modules, 'apprise' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def _paper_cycle_modules(tmp_path: Path, *overrides: str) -> tuple[str, set[str]]:
    """Run ``daemon-once --mode paper`` in a fresh interpreter under ``-X importtime``; return
    its output and every module it imported."""
    env = dict(os.environ, OTONOM_HOME=str(tmp_path / "home"), COLUMNS="200")
    command = [sys.executable, "-X", "importtime", "-m", "otonom_trader.cli", "daemon-once"]
    command += ["--strategy", str(BASELINE), "--mode", "paper"]
    for override in overrides:
        command += ["-o", override]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modules = _imported_modules(result.stderr)
    assert "otonom_trader.daemon.cycle" in modules  # the parse sees the cycle's own imports
    return result.stdout, modules


def test_paper_cycle_when_no_alert_channel_then_neither_ccxt_nor_apprise_imported(
    tmp_path: Path,
) -> None:
    output, modules = _paper_cycle_modules(tmp_path)

    assert "PAPER" in output  # the cycle ran and printed its summary
    assert "ccxt" not in modules
    assert "apprise" not in modules


def test_paper_cycle_when_an_alert_channel_is_configured_then_apprise_is_loaded(
    tmp_path: Path,
) -> None:
    _, modules = _paper_cycle_modules(tmp_path, "alerts.urls=[json://127.0.0.1:9/hook]")

    assert "apprise" in modules  # configured: the channel is built with Apprise
    assert "ccxt" not in modules
