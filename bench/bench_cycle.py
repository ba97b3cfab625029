"""Benchmark: what one PAPER cycle costs, in the library and as a Prefect flow.

Prints, for a one-symbol PAPER cycle on synthetic data (SQLite in a temporary directory):

* ``run_once()``  — the library path, no Prefect;
* the daemon flow — the same steps as five Prefect tasks;
* an empty five-task flow on the same Prefect server — Prefect's own floor;

and the ratio daemon flow / empty flow (target ≤ 1.15: our work is small next to Prefect's).

    .venv/bin/python bench/bench_cycle.py [--runs 15]

Uses ``PREFECT_API_URL`` when set; otherwise starts Prefect's test server once for all runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE_SYMBOL_STRATEGY = """\
# The baseline rules on one symbol, for the benchmark.
name: bench_one_symbol
version: "1.0"
symbols: [BTC/USDT]
timeframe: 1h
entry:
  - {indicator: ema_cross, fast: 12, slow: 26, direction: up}
  - {indicator: rsi, period: 14, below: 70}
exit:
  - {indicator: ema_cross, fast: 12, slow: 26, direction: down}
sizing: {mode: pct_equity, value: 10, max_position_quote: 2500}
"""


def _median_ms(fn: Callable[[], object], runs: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), statistics.pstdev(samples)


@contextlib.contextmanager
def _prefect_server() -> Iterator[str]:
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="measured runs per variant (median)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="otonom-bench-"))
    os.environ["OTONOM_HOME"] = str(work / "home")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    strategy = work / "one_symbol.yaml"
    strategy.write_text(ONE_SYMBOL_STRATEGY)
    overrides = ["alerts.enabled=false", f"strategy.path={strategy}", f"db.url={work / 'bench.db'}"]

    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from otonom_trader.daemon import TradingDaemon

    daemon = TradingDaemon(overrides=overrides)
    lib_ms, lib_sd = _median_ms(daemon.run_once, args.runs)
    daemon.close()

    spec = importlib.util.spec_from_file_location("bench_daemon_flow", ROOT / "flows" / "daemon.py")
    assert spec and spec.loader
    flows = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flows)

    @task(cache_policy=NO_CACHE)
    def nothing(value: int) -> int:
        return value

    @flow(name="empty-five-tasks")
    def empty_flow() -> int:
        total = 0
        for i in range(5):
            total += nothing(i)
        return total

    with _prefect_server() as api:
        empty_ms, empty_sd = _median_ms(empty_flow, args.runs)
        flow_ms, flow_sd = _median_ms(lambda: flows.daemon(overrides), args.runs)
        empty_again_ms, _ = _median_ms(empty_flow, args.runs, warmup=0)
    floor = min(empty_ms, empty_again_ms)
    print(f"Prefect API: {api}   runs per variant: {args.runs} (median ± stdev)")
    print(f"{'variant':<34}{'median ms':>12}{'stdev':>9}")
    print(f"{'library run_once() (no Prefect)':<34}{lib_ms:>12.1f}{lib_sd:>9.1f}")
    print(f"{'daemon flow (5 tasks)':<34}{flow_ms:>12.1f}{flow_sd:>9.1f}")
    print(f"{'empty five-task flow':<34}{floor:>12.1f}{empty_sd:>9.1f}")
    ratio = flow_ms / floor
    verdict = "met" if ratio <= 1.15 else "NOT met"
    print(f"ratio daemon flow / empty flow: {ratio:.3f}  (target <= 1.15: {verdict})")
    print(f"our share of the daemon flow: {lib_ms / flow_ms:.1%} (library time / flow time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
