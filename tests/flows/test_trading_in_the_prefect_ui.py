"""Issue 13, points 1 and 8: a cycle's trading is where operators look — read back through
Prefect's client API from a real (temporary, session-wide) Prefect server: the run's name, its
``cycle-summary`` artifact, its order and fill log lines, its state message and result."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, LogFilter
from prefect.logging.handlers import APILogWorker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


async def _run_page(flow_run_id: Any) -> tuple[Any, list[Any], list[str]]:
    """What the UI's run page shows: the run, its cycle-summary artifacts, its log messages."""
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["cycle-summary"]), flow_run_id={"any_": [flow_run_id]}
            )
        )
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [flow_run_id]}))
    return run, list(artifacts), [log.message for log in logs]


@pytest.mark.prefect
def test_a_paper_cycle_shows_its_orders_fills_and_books_in_the_prefect_api(
    prefect_harness: None, daemon_flow_module: ModuleType, tmp_path: Path
) -> None:
    # Arrange: the always-buying strategy, so the cycle has an order and a fill
    overrides = [
        "alerts.enabled=false",
        f"db.url={tmp_path / 'flow.db'}",
        f"strategy.path={FIXTURES / 'always_buy_v1.0.yaml'}",
    ]

    # Act
    state = daemon_flow_module.daemon(overrides, return_state=True)
    APILogWorker.drain_all(timeout=30)  # the run logger ships logs in the background
    run, artifacts, messages = asyncio.run(_run_page(state.state_details.flow_run_id))

    # Assert: the name says what ran (mode, broker option, start time in UTC)
    assert state.is_completed()
    assert re.fullmatch(r"paper-sim-\d{4}-\d\d-\d\dT\d\d:\d\dZ", run.name), run.name
    # the state message is the summary's headline; the result its key numbers
    assert run.state.message.startswith("PAPER succeeded: 2 signal(s), 2 to act on; ")
    numbers = state.result()
    assert numbers["orders"] >= 1 and numbers["fills"] >= 1
    assert set(numbers["equity"]) == {"paper"} and numbers["guard"] == "clear"
    # the artifact has the signals, the orders and fills, the books
    [artifact] = artifacts
    assert "### Signals" in artifact.data and "| BTC/USDT | BUY |" in artifact.data
    assert "| paper | BTC/USDT | buy |" in artifact.data
    assert "### Books" in artifact.data
    assert artifact.description == run.state.message
    # one log line per order and per fill, in the run's own log
    orders = [m for m in messages if m.startswith("order paper ")]
    fills = [m for m in messages if m.startswith("fill paper ")]
    assert len(orders) == numbers["orders"] and len(fills) == numbers["fills"]
    assert any(m.startswith("order paper BTC/USDT BUY ") for m in orders)
    assert any(m.startswith("fill paper BTC/USDT BUY ") for m in fills)


@pytest.mark.prefect
def test_a_refused_input_fails_the_run_with_one_line_and_no_traceback(
    prefect_harness: None, daemon_flow_module: ModuleType, tmp_path: Path
) -> None:
    overrides = ["alerts.enabled=false", f"db.url={tmp_path / 'flow.db'}", "mode=shadow"]

    state = daemon_flow_module.daemon(
        [*overrides, "guardrails.max_drawdown_pct=200"], return_state=True
    )
    APILogWorker.drain_all(timeout=30)
    run, artifacts, messages = asyncio.run(_run_page(state.state_details.flow_run_id))

    assert state.is_failed()
    assert run.state.message.startswith("config error: guardrails.max_drawdown_pct: ")
    assert "\n" not in run.state.message
    assert not any("Traceback" in m for m in messages)
    assert re.fullmatch(r"shadow-sim-\d{4}-\d\d-\d\dT\d\d:\d\dZ", run.name), run.name
    [artifact] = artifacts
    assert "guardrails.max_drawdown_pct" in artifact.data
