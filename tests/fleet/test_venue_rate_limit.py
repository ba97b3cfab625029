"""A venue's request weight shared by a fleet's workers through a Prefect rate limit: the sizes,
the chunked credit, and two processes that together never exceed the limit on the exchange's
side."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from otonom_trader.broker.request_budget import (
    VENUE_LIMITS,
    RequestBudget,
    request_weight,
    share_budgets,
    shared_budget,
)
from otonom_trader.fleet.config import BotConfig
from otonom_trader.fleet.venue_limit import (
    CREDIT_TTL_S,
    SharedLimitSpec,
    SharedWeight,
    limit_name,
    limit_spec,
)
from otonom_trader.local_exchange import LocalBinanceExchange

WORKER = Path(__file__).with_name("venue_weight_worker.py")


@pytest.mark.parametrize("venue", sorted(VENUE_LIMITS))
def test_no_window_can_see_more_than_the_venue_budget(venue: str) -> None:
    published = VENUE_LIMITS[venue]
    spec = limit_spec(venue, "production", published)
    budget = int(published.limit * 0.9)

    # Bucket plus what decays back in a window and during the credit's life: the budget.
    worst = spec.limit + spec.decay_per_second * (published.window_s + CREDIT_TTL_S)
    assert math.isclose(worst, budget, rel_tol=1e-9)
    assert spec.name == f"venue-{venue}-weight"


def test_limit_names_tell_hosts_apart() -> None:
    assert limit_name("binance", "testnet") == "venue-binance-testnet-weight"
    assert limit_name("binance", "127.0.0.1:8765") == "venue-binance-127-0-0-1-8765-weight"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hundred_symbol_cycle_reserves_in_a_few_chunks_not_per_request() -> None:
    granted: list[int] = []
    spec = SharedLimitSpec("venue-x-weight", 2700, 45.0)
    shared = SharedWeight(
        spec,
        acquire=granted.append,
        ensure=lambda: spec,
        monotonic=Clock(),
    )

    for _ in range(100):  # one candle request (weight 2) per symbol
        shared(2)

    assert granted == [50, 50, 50, 50]
    assert shared.reserved == 200


def test_old_credit_is_dropped_and_a_heavy_request_is_reserved_whole() -> None:
    granted: list[int] = []
    clock = Clock()
    spec = SharedLimitSpec("venue-x-weight", 30, 1.0)  # as the server has it: smaller than CHUNK
    shared = SharedWeight(
        SharedLimitSpec("venue-x-weight", 2700, 45.0),
        acquire=granted.append,
        ensure=lambda: spec,
        monotonic=clock,
    )

    shared(2)  # reserves a chunk of 30: the server's bucket, not the 2700 asked for
    clock.now = CREDIT_TTL_S  # the 28 left are too old to spend now
    shared(2)
    shared(70)  # 28 in credit, 42 more: more than the bucket holds, taken in two parts

    assert granted == [30, 30, 30, 12]


def test_off_by_default_each_process_paces_itself() -> None:
    assert BotConfig().shared_venue_budget is False
    share_budgets(None)
    budget = shared_budget("binance", "http://127.0.0.1:1")
    assert budget is not None and budget.upstream is None


def test_switching_sharing_on_reaches_budgets_made_before() -> None:
    budget = shared_budget("binance", "http://127.0.0.1:2")
    assert isinstance(budget, RequestBudget)
    taken: list[int] = []
    try:
        share_budgets(lambda venue, host, limit: taken.append)
        budget.spend(7)
    finally:
        share_budgets(None)
    assert taken == [7]
    assert budget.upstream is None


def _max_in_window(events: list[tuple[float, int]], window_s: float) -> int:
    """The most weight any ``window_s`` of ``(time, weight)`` events holds."""
    events = sorted(events)
    best = total = start = 0
    for t, weight in events:
        total += weight
        while events[start][0] <= t - window_s:
            total -= events[start][1]
            start += 1
        best = max(best, total)
    return best


@pytest.mark.prefect
@pytest.mark.slow
def test_two_workers_sharing_the_limit_never_exceed_it_together(
    prefect_harness: None, local_binance: LocalBinanceExchange, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    from otonom_trader.accounts.concurrency import ensure_global_limit

    # A small limit, sized like limit_spec sizes the real ones, so a few seconds fill it:
    # 60 weight per 2-second window.
    window_s, budget = 2.0, 60
    bucket = budget // 2
    decay = (budget - bucket) / (window_s + CREDIT_TTL_S)
    name = limit_name("binance", urlsplit(local_binance.base_url).netloc)
    ensure_global_limit(name, bucket, decay)

    env = dict(os.environ, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), local_binance.base_url, str(path), str(go), "4"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in ready
    ]
    deadline = time.monotonic() + 120
    while not all(p.exists() for p in ready) and time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            break  # one ended early: its error is reported below
        time.sleep(0.05)
    go.touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    events = [
        (r.at.timestamp(), request_weight("binance", r.method, r.path, r.params))
        for r in local_binance.requests
    ]
    spent = sum(weight for _, weight in events)
    assert local_binance.weight_total == spent
    assert all(r["requests"] > 0 for r in results)  # both workers got their share
    # They wanted more than the bucket holds: the slots decaying back paced them.
    assert sum(r["reservations"] for r in results) > 2 and spent > bucket
    assert _max_in_window(events, window_s) <= budget
    assert spent <= sum(r["reserved"] for r in results)
