"""Issue 13, point 7: the flows set Prefect's analytics off and a patient temporary server
before Prefect is imported, unless the user set them."""

from __future__ import annotations

import os
import subprocess
import sys

from otonom_trader.config.compose import PROJECT_ROOT

READ_SETTINGS = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("flow_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from prefect.settings import get_current_settings
settings = get_current_settings()
print(settings.server.analytics_enabled, settings.server.ephemeral.startup_timeout_seconds)
"""
NAMES = (
    "PREFECT_SERVER_ANALYTICS_ENABLED",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
    "DO_NOT_TRACK",
)


def _settings_seen_by(flow_file: str, **user_set: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    env.update(user_set)
    result = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS, str(PROJECT_ROOT / "flows" / flow_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split()


def test_the_daemon_flow_defaults_analytics_off_and_a_90_s_server_start_up() -> None:
    assert _settings_seen_by("daemon.py") == ["False", "90"]


def test_what_the_user_set_wins() -> None:
    seen = _settings_seen_by(
        "watchdog.py",
        PREFECT_SERVER_ANALYTICS_ENABLED="true",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="33",
    )

    assert seen == ["True", "33"]
