"""Migration ``0009_bots`` on a database written before bots: it joins the branches it alters,
adds the ``bot`` / ``account_id`` columns, and gives old orders and fills of an account's book
their account (old rows stay the unnamed bot's)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from otonom_trader.persistence import Database
from otonom_trader.persistence.database import _alembic_config

BEFORE_BOTS = (
    "0002_guardrails",
    "0004_shadow",
    "0005_accounts",
    "0005_alert_transitions",
    "0006_ledger_trades",
    "0007_history_indexes",
    "0008_promotion",
)
ACCOUNT = "binance-t-0123456789"


def test_an_old_database_is_migrated_and_its_account_orders_and_fills_get_their_account(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = _alembic_config(url)
    for head in BEFORE_BOTS:
        command.upgrade(cfg, head)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (account_id, venue, environment, endpoint, label, "
                "key_fingerprint, book, created_at, last_used_at) VALUES (:a, 'binance', "
                "'testnet', '', 'main', '', :a, '2026-01-01', '2026-01-01')"
            ),
            {"a": ACCOUNT},
        )
        for cid, book in (("o-1", ACCOUNT), ("o-2", "paper")):
            conn.execute(
                text(
                    "INSERT INTO orders (client_order_id, book, mode, symbol, side, order_type, "
                    "status, reduce_only, requested_qty, filled_qty, fee, created_at, "
                    "updated_at) VALUES (:c, :b, 'live', 'BTC/USDT', 'buy', 'market', 'filled', "
                    "0, '1', '1', '0', '2026-01-01', '2026-01-01')"
                ),
                {"c": cid, "b": book},
            )
    engine.dispose()

    db = Database(url)
    try:
        with db.engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT book, account_id FROM orders")).all())
            bots = set(conn.execute(text("SELECT bot FROM orders")).scalars())
        assert db.current_revisions() >= {"0009_bots"}
        assert set(BEFORE_BOTS) <= db.applied_revisions()
    finally:
        db.dispose()
    assert rows == {ACCOUNT: ACCOUNT, "paper": None}
    assert bots == {None}
