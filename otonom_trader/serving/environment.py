"""Prefect defaults for the user, set before Prefect is imported (its settings read the
environment): no analytics, and a temporary server that may take its time to start.

A value the user set wins. Without ``PREFECT_API_URL`` every run starts a temporary server
(10-17 s on a loaded machine, over Prefect's 20 s default now and then); the README recommends a
long-lived ``prefect server start`` instead.
"""

from __future__ import annotations

import os

#: Setting → the value used unless the environment already has one.
PREFECT_DEFAULTS: dict[str, str] = {
    # No anonymous usage data from the server (its first send also raced the temporary
    # server's SQLite: a ~100-line "database is locked" traceback on the first run).
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The client-side opt-out Prefect honours (the standard DO_NOT_TRACK convention).
    "DO_NOT_TRACK": "1",
    # The temporary server gets 90 s to start instead of 20 s: under load it took longer.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def apply_prefect_defaults() -> dict[str, str]:
    """Set each of ``PREFECT_DEFAULTS`` the user has not set; return the ones set now."""
    applied = {}
    for name, value in PREFECT_DEFAULTS.items():
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    return applied
