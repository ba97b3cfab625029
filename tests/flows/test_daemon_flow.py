"""The daemon flow under Prefect's real engine: five tasks, retries only on reads, artifacts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter
from sqlalchemy import select

from otonom_trader.persistence import DaemonRun, Database

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _overrides(tmp_path: Path, *extra: str) -> list[str]:
    return ["alerts.enabled=false", f"db.url={tmp_path / 'flow.db'}", *extra]


def test_retries_are_on_reads_only_and_never_on_execute_or_the_flow(
    daemon_flow_module: ModuleType,
) -> None:
    m = daemon_flow_module

    assert m.fetch_signal_task.retries == 2
    assert m.guard_check_task.retries == 2
    assert m.snapshot_task.retries == 2
    assert m.execute_task.retries == 0
    assert not m.daemon.retries
    assert [h.__name__ for h in m.daemon.on_failure_hooks] == ["_alert_on_failure"]
    assert [h.__name__ for h in m.daemon.on_crashed_hooks] == ["alert_on_flow_crashed"]


@pytest.mark.prefect
def test_paper_flow_runs_the_five_tasks_in_order(
    prefect_harness: None, daemon_flow_module: ModuleType, tmp_path: Path
) -> None:
    state = daemon_flow_module.daemon(_overrides(tmp_path), return_state=True)

    numbers = state.result()
    assert state.is_completed() and numbers["status"] == "succeeded"
    task_names = asyncio.run(_task_names(state.state_details.flow_run_id))
    assert task_names == ["fetch_signal", "guard_check", "execute", "snapshot", "health_check"]
    db = Database(tmp_path / "flow.db")
    with db.session() as session:
        run = session.scalars(select(DaemonRun)).one()
    assert run.run_id == str(state.state_details.flow_run_id)
    assert run.flow_run_id == run.run_id and run.status == "succeeded"


async def _task_names(flow_run_id: object) -> list[str]:
    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]})
        )
    ordered = sorted(runs, key=lambda r: r.expected_start_time or r.created)
    return [r.name.rsplit("-", 1)[0] for r in ordered]


@pytest.mark.prefect
def test_shadow_flow_publishes_its_pairs_as_a_markdown_artifact(
    prefect_harness: None, daemon_flow_module: ModuleType, tmp_path: Path
) -> None:
    overrides = _overrides(
        tmp_path, "mode=shadow", f"strategy.path={FIXTURES / 'always_buy_v1.0.yaml'}"
    )

    state = daemon_flow_module.daemon(overrides, return_state=True)

    assert state.is_completed()
    artifacts = asyncio.run(_artifacts(state.state_details.flow_run_id))
    assert len(artifacts) == 1
    assert "BTC/USDT" in (artifacts[0].data or "")


async def _artifacts(flow_run_id: object) -> list[object]:
    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["shadow-pairs"]), flow_run_id={"any_": [flow_run_id]}
            )
        )


@pytest.mark.prefect
def test_a_bad_override_fails_the_flow_with_the_key_named(
    prefect_harness: None, daemon_flow_module: ModuleType, tmp_path: Path
) -> None:
    state = daemon_flow_module.daemon(
        _overrides(tmp_path, "guardrails.max_drawdown_pct=200"), return_state=True
    )

    assert state.is_failed()
    assert "guardrails.max_drawdown_pct" in str(state.message)


def test_a_config_error_in_a_read_task_is_not_retried_but_other_errors_are(
    daemon_flow_module: ModuleType,
) -> None:
    from prefect.states import Failed

    from otonom_trader.config.errors import ConfigError

    retry = daemon_flow_module.retry_unless_final

    assert retry(None, None, Failed(data=ConfigError("bad", key="data.csv_path"))) is False
    assert retry(None, None, Failed(data=TimeoutError("exchange slow"))) is True


@pytest.fixture
def alerts(daemon_flow_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The failure alerts the flow's hook would send, recorded instead of sent."""
    sent: list[str] = []
    monkeypatch.setattr(
        daemon_flow_module, "alert_on_flow_failure", lambda f, run, state: sent.append("sent")
    )
    return sent


@pytest.mark.prefect
def test_a_bad_input_given_to_the_flow_directly_fails_it_without_an_alert_or_a_database(
    prefect_harness: None, daemon_flow_module: ModuleType, tmp_path: Path, alerts: list[str]
) -> None:
    # Arrange: a deployment parameter the command line would have refused (alerts recorded)

    # Act
    state = daemon_flow_module.daemon(
        _overrides(tmp_path, "strategy.path=nope.yaml"), return_state=True
    )

    # Assert
    assert state.is_failed()
    assert "strategy.path" in str(state.message) and "not found" in str(state.message)
    assert alerts == []
    assert not (tmp_path / "flow.db").exists()


@pytest.mark.prefect
def test_an_internal_error_in_the_flow_still_sends_the_failure_alert(
    prefect_harness: None,
    daemon_flow_module: ModuleType,
    tmp_path: Path,
    alerts: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: a bug (not a user's input) while wiring the cycle (alerts recorded)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("wiring bug")

    monkeypatch.setattr(daemon_flow_module, "build_context", broken)

    # Act
    state = daemon_flow_module.daemon(_overrides(tmp_path), return_state=True)

    # Assert
    assert state.is_failed() and "wiring bug" in str(state.message)
    assert alerts == ["sent"]
