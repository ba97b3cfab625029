"""Benchmark: how a fleet's scheduling overhead per bot grows from 1 to 50 bots on one server.

Starts a Prefect server on a throw-away PostgreSQL database and one process worker on a pool,
then for each fleet size N (1, 10, 25, 50 PAPER bots, each its own deployment, trading database
on PostgreSQL too):

* **validate / bot**: ``load_fleet`` (every bot's Hydra composition and value checks) / N;
* **deploy / bot**: ``deploy_fleet`` (one deployment per bot, the account limits) / N;
* **submit lag**: from a run's scheduled start to the worker submitting it (its Pending state;
  negative when the worker prefetched it, 10 s ahead by default): the server's and the
  worker's share;
* **start lag**: for one run per bot, scheduled ``--spacing`` seconds apart (so the cycles
  themselves do not pile up on the machine), the time from the run's scheduled start to its
  flow code starting (the run's ``start_time``: Running, just before the flow function), through
  the real worker, which spawns a process per run. N = 1 takes ``--single-runs`` runs of its one
  bot, ``--single-spacing`` apart (a bot's runs never overlap: a second one would wait for the
  account's slot).

It prints the table and the ratio 50-bot vs 1-bot per-bot overhead (target: flat within 1.5x;
a start lag under a second counts as one, see ``render``).

    .venv/bin/python bench/bench_fleet.py                      # 1, 10, 25, 50 bots (~7 min)
    .venv/bin/python bench/bench_fleet.py --sizes 1 10 --spacing 3

PostgreSQL: ``$OTONOM_BENCH_PG_ADMIN_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:
5432/postgres``); the server's database (asyncpg) and the bots' are created and dropped.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text

from otonom_trader.testkit.prefect_server import wait_until_healthy

PG_ADMIN = os.environ.get(
    "OTONOM_BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
#: Seconds between the first run's creation and its scheduled start (the worker's 10 s query
#: interval and prefetch see it in time).
LEAD_S = 15.0


@contextmanager
def postgres_database(driver: str) -> Iterator[str]:
    """A throw-away PostgreSQL database, as a URL with ``driver`` (``psycopg``, ``asyncpg``)."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"otonom_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql+psycopg", f"postgresql+{driver}")
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prefect_server(database_url: str, home: Path) -> Iterator[str]:
    """``prefect server start`` on ``database_url``; yields its API URL."""
    port = free_port()
    env = dict(
        os.environ,
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_until_healthy(api, server)
        yield api
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


@contextmanager
def process_worker(pool: str, api: str, env: dict[str, str], workdir: Path) -> Iterator[None]:
    """A real ``prefect worker start`` on ``pool`` (its own process), stopped afterwards."""
    log = (workdir / "worker.log").open("w")
    worker = subprocess.Popen(
        [_prefect(), "--no-prompt", "worker", "start", "--pool", pool, "--type", "process"],
        env=dict(env, PREFECT_API_URL=api),
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()


def _prefect() -> str:
    return str(Path(sys.executable).parent / "prefect")


def write_fleet(directory: Path, size: int, pool: str, prefix: str = "bench") -> Path:
    """A fleet file of ``size`` PAPER bots (distinct names, one deployment each)."""
    path = directory / f"{prefix}{size}.yaml"
    lines = [f"pool: {pool}", "bots:"]
    for index in range(size):
        lines.append(f"  - name: {prefix}{size}-{index}")
        lines.append("    overrides: [mode=paper, db=postgres, alerts.enabled=false]")
    path.write_text("\n".join(lines) + "\n")
    return path


def schedule_runs(deployment_ids: list[Any], starts: list[datetime]) -> list[Any]:
    """One flow run per ``(deployment, start)``; returns the runs' ids."""
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        return [
            client.create_flow_run_from_deployment(d, state=Scheduled(scheduled_time=at)).id
            for d, at in zip(deployment_ids, starts, strict=True)
        ]


def wait_for_runs(run_ids: list[Any], until: float) -> list[Any]:
    """The runs once all are final (or at ``until``, monotonic)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
            )
            if all(r.state is not None and r.state.is_final() for r in runs):
                return list(runs)
            if time.monotonic() > until:
                return list(runs)
            time.sleep(2)


def measure(size: int, args: argparse.Namespace, directory: Path, pool: str) -> dict[str, Any]:
    """Validate, deploy and run a fleet of ``size`` bots; the row of the table."""
    from prefect.client.orchestration import get_client

    from otonom_trader.fleet.deploy import FLOW_NAME, deploy_fleet
    from otonom_trader.fleet.file import load_fleet

    path = write_fleet(directory, size, pool)
    started = time.perf_counter()
    fleet = load_fleet(str(path))
    validated = time.perf_counter()
    deploy_fleet(fleet, no)
    deployed = time.perf_counter()

    with get_client(sync_client=True) as client:
        ids = [client.read_deployment_by_name(f"{FLOW_NAME}/{b.name}").id for b in fleet.bots]
    first = datetime.now(UTC) + timedelta(seconds=LEAD_S)
    if size == 1:
        ids = ids * args.single_runs
        spacing = args.single_spacing
    else:
        spacing = args.spacing
    starts = [first + timedelta(seconds=i * spacing) for i in range(len(ids))]
    until = time.monotonic() + LEAD_S + spacing * len(ids) + args.drain
    runs = wait_for_runs(schedule_runs(ids, starts), until)
    lags = sorted(
        (r.start_time - r.expected_start_time).total_seconds()
        for r in runs
        if r.start_time is not None and r.expected_start_time is not None
    )
    durations = [r.total_run_time.total_seconds() for r in runs if r.start_time is not None]
    completed = sum(1 for r in runs if r.state is not None and r.state.is_completed())
    return {
        "bots": size,
        "validate": (validated - started) / size,
        "deploy": (deployed - validated) / size,
        "runs": len(runs),
        "started": len(lags),
        "completed": completed,
        "submit_median": statistics.median(submit_lags(runs)),
        "lag_median": statistics.median(lags) if lags else float("nan"),
        "lag_p90": lags[int(0.9 * (len(lags) - 1))] if lags else float("nan"),
        "run_median": statistics.median(durations) if durations else float("nan"),
        "states": dict(Counter(r.state.name if r.state else "none" for r in runs)),
    }


def submit_lags(runs: list[Any]) -> list[float]:
    """Seconds from each run's scheduled start to the worker submitting it (its Pending state;
    negative: the worker prefetched it), the server's and the worker's part of the lag."""
    from prefect.client.orchestration import get_client

    lags = []
    with get_client(sync_client=True) as client:
        for run in runs:
            states = client.read_flow_run_states(run.id)
            pending = [st.timestamp for st in states if st.type.value == "PENDING"]
            if pending and run.expected_start_time is not None:
                lags.append((min(pending) - run.expected_start_time).total_seconds())
    return lags or [float("nan")]


def no(names: list[str]) -> bool:
    """Never remove deployments (each size is its own fleet file)."""
    return False


def render(rows: list[dict[str, Any]]) -> None:
    table = Table(title="fleet scheduling overhead per bot (Prefect server on PostgreSQL)")
    for column in (
        "bots",
        "validate s/bot",
        "deploy s/bot",
        "runs started/completed",
        "submit lag median s",
        "start lag median s",
        "start lag p90 s",
        "run median s",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            str(row["bots"]),
            f"{row['validate']:.3f}",
            f"{row['deploy']:.3f}",
            f"{row['started']}/{row['completed']} of {row['runs']}",
            f"{row['submit_median']:.2f}",
            f"{row['lag_median']:.2f}",
            f"{row['lag_p90']:.2f}",
            f"{row['run_median']:.2f}",
        )
    console = Console(width=140)
    console.print(table)
    first, last = rows[0], rows[-1]
    if first is not last:
        for key, label in (
            ("validate", "validate per bot"),
            ("deploy", "deploy per bot"),
            ("lag_median", "start lag per run"),
        ):
            # A lag under a second counts as one: the server's wait for the scheduled time is
            # in whole seconds, so a prefetched run starts within ±0.5 s of it.
            floor = 1.0 if key == "lag_median" else 0.0
            ratio = max(last[key], floor) / max(first[key], floor, 1e-9)
            verdict = "flat (within 1.5x)" if ratio <= 1.5 else "NOT flat (over 1.5x)"
            console.print(
                f"{label}: {last['bots']} bots vs {first['bots']}: {ratio:.2f}x — {verdict}"
            )
        shift = last["submit_median"] - first["submit_median"]
        console.print(
            f"submit lag (server + worker): {last['bots']} bots vs {first['bots']}: "
            f"{shift:+.2f} s ({first['submit_median']:+.2f} s → {last['submit_median']:+.2f} s; "
            "negative: submitted before the scheduled time)"
        )
    load = os.getloadavg()
    console.print(
        f"load average now {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} "
        "CPUs: the start lag includes each run's own process start, which a loaded machine slows"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 25, 50])
    parser.add_argument("--spacing", type=float, default=4.0, help="seconds between runs")
    parser.add_argument("--single-runs", type=int, default=5)
    # More than the worker's 10 s prefetch: a bot's next run submitted while its previous one
    # still holds the account's slot would wait for it, and its start lag with it.
    parser.add_argument("--single-spacing", type=float, default=20.0)
    parser.add_argument("--drain", type=float, default=90.0, help="seconds to wait past the last")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_fleet_") as tmp:
        directory = Path(tmp)
        home = directory / "home"
        home.mkdir()
        with (
            postgres_database("asyncpg") as server_db,
            postgres_database("psycopg") as trading_db,
            prefect_server(server_db, directory) as api,
        ):
            # The bots' database and home for this process (fleet validation, deploy) and the
            # worker's runs alike; Prefect reads PREFECT_API_URL on import.
            os.environ.update(PREFECT_API_URL=api, OTONOM_DB_URL=trading_db, OTONOM_HOME=str(home))
            from otonom_trader.persistence.database import Database

            Database(trading_db).dispose()  # migrated once, not by fifty first runs at once
            pool = f"bench-{uuid.uuid4().hex[:6]}"
            from prefect.client.orchestration import get_client

            from otonom_trader.fleet.deploy import deploy_fleet, ensure_pool
            from otonom_trader.fleet.file import load_fleet

            with get_client(sync_client=True) as client:
                ensure_pool(client, pool)
            # One-time costs (imports, the flow's parameter schema) out of the first row.
            deploy_fleet(load_fleet(str(write_fleet(directory, 1, pool, "warmup"))), no)
            rows = []
            with process_worker(pool, api, dict(os.environ), directory):
                for size in args.sizes:
                    row = measure(size, args, directory, pool)
                    print(row, flush=True)
                    rows.append(row)
            render(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
