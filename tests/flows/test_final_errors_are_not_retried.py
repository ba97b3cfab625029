"""Prefect's task retries skip final errors (issue 16, point 5): a bad API key fails the read in
one attempt instead of three (16.8 s of retry delays on the old flow), under Prefect's real
engine against the local Binance-compatible exchange."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.states import Failed

from otonom_trader.broker.errors import (
    AuthenticationError,
    BrokerNetworkError,
    PermissionDeniedError,
)
from otonom_trader.config.errors import ConfigError
from otonom_trader.local_exchange import LocalBinanceExchange


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (AuthenticationError("invalid API key"), False),
        (PermissionDeniedError("key may withdraw"), False),
        (ConfigError("must be positive", key="broker.x"), False),
        (PermissionError("read-only file system"), False),
        (BrokerNetworkError("connection reset"), True),
        (TimeoutError("read timed out"), True),
    ],
)
def test_retry_condition_retries_only_what_may_succeed_later(
    daemon_flow_module: ModuleType, error: Exception, retried: bool
) -> None:
    state: Any = Failed(data=error)

    assert daemon_flow_module.retry_unless_final(None, None, state) is retried


def test_every_retrying_task_has_the_retry_condition(daemon_flow_module: ModuleType) -> None:
    m = daemon_flow_module
    for task in (m.fetch_signal_task, m.guard_check_task, m.snapshot_task, m.health_check_task):
        assert task.retries >= 1
        assert task.retry_condition_fn is m.retry_unless_final


@pytest.mark.prefect
def test_a_bad_key_fails_the_flow_in_one_attempt(
    prefect_harness: None,
    daemon_flow_module: ModuleType,
    local_binance: LocalBinanceExchange,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "not-the-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "not-the-secret")
    overrides = [
        "mode=shadow",
        "broker=binance_testnet",
        f"broker.base_url={local_binance.base_url}",
        "alerts.enabled=false",
        f"db.url={tmp_path / 'flow.db'}",
    ]

    started = time.perf_counter()
    state = daemon_flow_module.daemon(overrides, return_state=True)
    elapsed = time.perf_counter() - started

    assert state.is_failed()
    runs = asyncio.run(_task_runs(state.state_details.flow_run_id))
    # The first read of the account (reconciliation, before any task) is refused: the cycle
    # ends there; no task is retried.
    assert all(r.run_count <= 1 for r in runs)
    signed = [p for p in local_binance.request_paths() if p.endswith("/api/v3/account")]
    assert len(signed) == 1  # the refused request was sent once, not three times
    assert elapsed < 2.0 + 10.0  # no retry delay was waited (they are 2 s, then 10 s)
    with capsys.disabled():
        print(f"\nbad key: the flow failed after 1 signed request in {elapsed:.2f} s")
    with pytest.raises(AuthenticationError):
        state.result()


async def _task_runs(flow_run_id: object) -> list[Any]:
    async with get_client() as client:
        return list(
            await client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}))
        )
