"""Benchmark: what a cold start costs — the library's import, and one flow run as a new process.

Prints, each the median of ``--runs`` fresh processes:

* ``import otonom_trader.daemon`` — wall time of the import inside a new interpreter
  (target ≤ 0.4 s), and the same for ``import prefect`` as a yardstick on this machine;
* ``python flows/daemon.py`` — one PAPER cycle as a Prefect flow, the whole process;
* a bare five-task Prefect flow script — the same server, the same interpreter, no work
  (the two scripts run in turn, so a burst of load on the machine hits both alike);

and daemon flow minus bare flow (target ≤ 0.5 s): what our code adds to Prefect's own start, in
wall time and in CPU time (the CPU column barely moves when other work loads the machine).
One ``prefect server start`` on a free port serves every flow run (``PREFECT_API_URL``).

    .venv/bin/python bench/bench_cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from otonom_trader.testkit.prefect_server import wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
IMPORT_TARGET_S = 0.4
FLOW_OVERHEAD_TARGET_S = 0.5

BARE_FLOW = """\
from prefect import flow, task
from prefect.cache_policies import NO_CACHE


@task(cache_policy=NO_CACHE)
def nothing(value: int) -> int:
    return value


@flow(name="bare-five-tasks")
def bare() -> int:
    return sum(nothing(i) for i in range(5))


if __name__ == "__main__":
    bare()
"""

TIMED_IMPORT = (
    "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _prefect_server(env: dict[str, str], log: Path) -> Iterator[str]:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(api, server, log=log)
        yield api
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _interleaved_runs(
    commands: dict[str, list[str]], env: dict[str, str], cwd: Path, runs: int
) -> dict[str, tuple[float, float]]:
    """Median wall time and median CPU time (user + system) of each command, run in turn (a
    burst of load hits each alike); the first round warms the disk cache, the database and the
    composed-configuration cache, and is not counted. CPU time is what the process itself
    computed: it hardly moves when other work loads the machine, wall time does."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for round_ in range(runs + 1):
        for name, command in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if round_:
                samples[name].append((wall, cpu))
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-1500:]}")
    return {
        name: (
            statistics.median(wall for wall, _ in values),
            statistics.median(cpu for _, cpu in values),
        )
        for name, values in samples.items()
    }


def _median_import_s(module: str, env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs + 1):
        result = subprocess.run(
            [sys.executable, "-c", TIMED_IMPORT.format(module=module)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(result.stdout.strip()))
    return statistics.median(samples[1:])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="processes per variant (median)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="otonom-bench-cold-"))
    env = dict(
        os.environ,
        OTONOM_HOME=str(work / "home"),
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    env.pop("PREFECT_API_URL", None)
    bare = work / "bare_flow.py"
    bare.write_text(BARE_FLOW)

    import_daemon = _median_import_s("otonom_trader.daemon", env, args.runs)
    import_prefect = _median_import_s("prefect", env, args.runs)
    with _prefect_server(env, work / "server.log") as api:
        env["PREFECT_API_URL"] = api
        measured = _interleaved_runs(
            {
                "bare": [sys.executable, str(bare)],
                "daemon": [sys.executable, str(ROOT / "flows" / "daemon.py")],
            },
            env,
            work,
            args.runs,
        )

    (floor, floor_cpu), (daemon_s, daemon_cpu) = measured["bare"], measured["daemon"]
    overhead = daemon_s - floor
    print(f"Prefect API: {api}   processes per variant: {args.runs} (median)")
    print(f"{'variant':<42}{'wall s':>9}{'CPU s':>9}")
    print(f"{'import otonom_trader.daemon':<42}{import_daemon:>9.3f}")
    print(f"{'import prefect (yardstick)':<42}{import_prefect:>9.3f}")
    print(f"{'python flows/daemon.py (one PAPER cycle)':<42}{daemon_s:>9.3f}{daemon_cpu:>9.3f}")
    print(f"{'bare five-task flow script':<42}{floor:>9.3f}{floor_cpu:>9.3f}")
    verdict = "met" if import_daemon <= IMPORT_TARGET_S else "NOT met"
    print(f"import otonom_trader.daemon: {import_daemon:.3f} s (target <= 0.4: {verdict})")
    verdict = "met" if overhead <= FLOW_OVERHEAD_TARGET_S else "NOT met"
    print(f"daemon flow - bare flow: {overhead:.3f} s wall (target <= 0.5: {verdict}), ", end="")
    print(f"{daemon_cpu - floor_cpu:.3f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
