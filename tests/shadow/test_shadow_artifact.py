"""The per-run markdown of shadow pairs and its Prefect artifact, under Prefect's real engine."""

from __future__ import annotations

import re
from uuid import UUID

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.context import FlowRunContext

from otonom_trader.persistence import Database
from otonom_trader.shadow.report import ARTIFACT_KEY, publish_run_artifact, run_markdown

from .conftest import Example


def test_run_markdown_has_a_row_for_each_pair_of_the_run(example: Example) -> None:
    # Act
    markdown = run_markdown(example.db, example.run_id)

    # Assert
    rows = [line for line in markdown.splitlines() if re.match(r"\| i\d ", line)]
    assert [row.split(" | ")[0] for row in rows] == ["| i1", "| i2", "| i3", "| i4"]
    assert "| i1 | BTC/USDT | buy | 1 | 100 | 1 @ 100.1 (10.00 bps) | 1 @ 100.05 (5.00 bps) |" in (
        markdown
    )
    assert "halted" in rows[2] and "KILL-SWITCH active: max drawdown 12% > 10%" in rows[2]
    assert "rejected" in rows[3] and "InsufficientFundsError" in rows[3]
    assert "i0" not in markdown  # another run's pair
    assert "4 pairs · paper filled 4/4 · broker filled 2/4" in markdown


def test_run_markdown_of_a_run_without_pairs_says_so(sqlite_db: Database) -> None:
    # Act
    markdown = run_markdown(sqlite_db, "run-nothing")

    # Assert
    assert "no shadow pairs in this run" in markdown


def test_run_markdown_escapes_pipes_so_the_table_keeps_its_columns(example: Example) -> None:
    # Arrange: an id with a pipe would otherwise add a column
    from datetime import timedelta
    from decimal import Decimal

    from otonom_trader.broker.types import OrderSide
    from otonom_trader.shadow.ledger import ShadowLedger, ShadowLeg

    ShadowLedger(example.db).record(
        run_id="run-pipe",
        intent_id="a|b",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        requested_qty=Decimal(1),
        signal_price=Decimal(100),
        paper=ShadowLeg.skipped("reason with | pipe"),
        broker=ShadowLeg.skipped("reason"),
        at=example.since + timedelta(minutes=1),
    )

    # Act
    markdown = run_markdown(example.db, "run-pipe")

    # Assert
    (row,) = [line for line in markdown.splitlines() if line.startswith("| a")]
    assert row.startswith("| a\\|b |")
    assert row.replace("\\|", "").count("|") == 10  # nine cells


def _artifacts_of(flow_run_id: UUID | None = None) -> list[object]:
    with get_client(sync_client=True) as client:
        return list(
            client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY])),
                flow_run_filter=(
                    FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])) if flow_run_id else None
                ),
            )
        )


@pytest.mark.prefect
def test_publish_run_artifact_inside_a_flow_run_creates_the_markdown_artifact(
    prefect_harness: None, example: Example
) -> None:
    # Arrange: a real flow whose task publishes, as the daemon's execute step would
    db_path = str(example.db.engine.url.database)

    @task
    def publish(path: str, run_id: str) -> None:
        db = Database(path)
        try:
            publish_run_artifact(db, run_id)
        finally:
            db.dispose()

    @flow
    def shadow_cycle(path: str, run_id: str) -> str:
        publish(path, run_id)
        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        return str(context.flow_run.id)

    # Act
    flow_run_id = UUID(shadow_cycle(db_path, example.run_id))

    # Assert
    (artifact,) = _artifacts_of(flow_run_id)
    assert artifact.key == ARTIFACT_KEY  # type: ignore[attr-defined]
    assert artifact.type == "markdown"  # type: ignore[attr-defined]
    assert artifact.data == run_markdown(example.db, example.run_id)  # type: ignore[attr-defined]
    assert example.run_id in artifact.description  # type: ignore[attr-defined]
    assert "broker filled 2/4" in artifact.description  # type: ignore[attr-defined]


@pytest.mark.prefect
def test_publish_run_artifact_outside_a_run_does_nothing(
    prefect_harness: None, example: Example
) -> None:
    # Arrange
    before = len(_artifacts_of())

    # Act
    publish_run_artifact(example.db, example.run_id)

    # Assert
    assert len(_artifacts_of()) == before


@pytest.mark.prefect
def test_publish_run_artifact_failure_is_logged_and_does_not_fail_the_flow_run(
    prefect_harness: None, example: Example, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: the artifact API fails (injected); the cycle's orders would already be placed
    import prefect.artifacts

    def refuse(**_: object) -> None:
        raise RuntimeError("artifact API unavailable")

    monkeypatch.setattr(prefect.artifacts, "create_markdown_artifact", refuse)
    db_path = str(example.db.engine.url.database)

    @flow
    def shadow_cycle(path: str, run_id: str) -> str:
        db = Database(path)
        try:
            publish_run_artifact(db, run_id)
        finally:
            db.dispose()
        return "done"

    # Act
    state = shadow_cycle(db_path, example.run_id, return_state=True)

    # Assert
    assert state.is_completed()
    assert state.result() == "done"
