"""Migrations 0003_alerts + 0005_alert_transitions match the model on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from otonom_trader.persistence import Database
from otonom_trader.persistence.registry import metadata


def test_alert_outbox_table_matches_its_model(any_db: Database) -> None:
    with any_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("alert_outbox")}

    mine = [d for d in diff if "alert_outbox" in repr(d)]
    assert mine == []
    assert "0005_alert_transitions" in any_db.applied_revisions()  # on top of 0003_alerts
    assert indexes == {
        "ix_alert_outbox_status_next",
        "ix_alert_outbox_dedupe",
        "ix_alert_outbox_channel_sent",
        "ux_alert_outbox_transition_channel",
        "ix_alert_outbox_channel_status_id",
    }
