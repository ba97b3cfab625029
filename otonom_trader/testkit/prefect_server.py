"""Waiting for a ``prefect server start`` process to answer, for tests and benchmarks."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


def wait_until_healthy(
    api_url: str,
    server: subprocess.Popen[Any],
    *,
    timeout: float = 180.0,
    log: Path | None = None,
) -> None:
    """Poll ``<api_url>/health`` until it answers 200 while the server migrates its database and
    starts. Raises ``RuntimeError`` when the process exits first and ``TimeoutError`` after
    ``timeout`` seconds, each with the tail of ``log`` when given."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"Prefect server exited with {server.returncode}{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"Prefect server not healthy after {timeout:.0f} s{_tail(log)}")


def _tail(log: Path | None) -> str:
    return f": {log.read_text()[-3000:]}" if log is not None and log.exists() else ""
