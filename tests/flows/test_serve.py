"""Issue 13, point 2: ``otonom-trader serve`` runs cycles with Prefect's runner until SIGTERM,
and SIGTERM lets the cycle in flight finish before the process exits with status 0.

The serve process is real (a subprocess against the session's real Prefect server). To have a
cycle *in flight* when SIGTERM arrives, the test holds the trading database's write lock (SQLite,
``BEGIN IMMEDIATE``): the cycle starts and waits on its first write. Every wait is on an event
(a line the process prints, a state the API reports) with a deadline, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL
from sqlalchemy import select

from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.persistence import DaemonRun, Database

DEADLINE_S = 240.0  # generous: two loaded cores start the runner and the run's own process


class Lines:
    """Collects a process's output lines in a thread; ``wait_for`` blocks until one appears."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.ended = True
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = DEADLINE_S) -> str:
        with self._changed:
            self._changed.wait_for(lambda: self._find(text) is not None or self.ended, timeout)
            found = self._find(text)
        assert found, f"no line with {text!r} within {timeout} s:\n" + "\n".join(self.lines[-40:])
        return str(found)

    def _find(self, text: str) -> str | None:
        return next((x for x in self.lines if text in x), None)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    """Ask ``condition`` (an API read) until it holds, within the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE_S} s"
        time.sleep(0.2)


def _flow_run_state(flow_run_id: Any) -> str:
    async def read() -> str:
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
        return run.state.type.value if run.state else "NONE"

    return asyncio.run(read())


@pytest.fixture
def locked_database(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A migrated trading database whose write lock the test holds until it releases it."""
    path = tmp_path / "served.db"
    Database(path).dispose()
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    yield path, lock
    lock.close()


@pytest.mark.prefect
@pytest.mark.slow
def test_sigterm_lets_the_cycle_in_flight_finish_and_serve_exits_0(
    prefect_harness: None, locked_database: tuple[Path, sqlite3.Connection], tmp_path: Path
) -> None:
    # Arrange: serve against the session's Prefect server, no automatic cycle (a daily
    # interval), the runner polling every second; the database's write lock held
    db_path, lock = locked_database
    env = dict(
        os.environ,
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        PYTHONUNBUFFERED="1",
        OTONOM_HOME=str(tmp_path / "home"),
    )
    overrides = ["alerts.enabled=false", f"db.url={db_path}", "db.busy_timeout_ms=300000"]
    serve = subprocess.Popen(
        [sys.executable, "-m", "otonom_trader.cli", "serve", "--interval", "86400", *overrides],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = Lines(serve.stdout)  # type: ignore[arg-type]
        lines.wait_for("serving otonom-daemon/serve-paper-sim")

        # Act: a run of the served deployment starts and waits on the database ...
        flow_run = run_deployment("otonom-daemon/serve-paper-sim", timeout=0)
        _wait_until(lambda: _flow_run_state(flow_run.id) == "RUNNING", "the cycle started")
        # ... SIGTERM while it is in flight; then the database is released
        serve.send_signal(signal.SIGTERM)
        lines.wait_for("SIGTERM received, finishing the cycle in flight")
        still_serving = serve.poll() is None
        lock.execute("ROLLBACK")
        status = serve.wait(timeout=DEADLINE_S)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()

    # Assert: the process waited for the cycle, which completed and was recorded, then exited 0
    assert still_serving
    assert status == 0, "\n".join(lines.lines[-40:])
    lines.wait_for("serve: stopped cleanly")
    assert _flow_run_state(flow_run.id) == "COMPLETED"
    db = Database(db_path)
    with db.session() as session:
        [run] = session.scalars(select(DaemonRun)).all()
    db.dispose()
    assert run.run_id == str(flow_run.id)
    assert run.status == "succeeded" and run.finished_at is not None


def test_serve_refuses_a_bad_override_with_one_line_before_starting_prefect(
    tmp_path: Path,
) -> None:
    for command in (
        [sys.executable, "-m", "otonom_trader.cli", "serve", "guardrails.max_drawdown_pct=200"],
        [sys.executable, "flows/daemon.py", "--serve", "guardrails.max_drawdown_pct=200"],
    ):
        result = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            env=dict(os.environ, OTONOM_HOME=str(tmp_path / "home")),
        )

        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("config error: guardrails.max_drawdown_pct: ")
