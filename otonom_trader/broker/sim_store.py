"""Where the simulated exchange keeps its account: a small SQLite database of its own.

One row per asset balance, one per resting order and one per order the exchange ever saw (its
result, as the JSON the exchange reports it from). An order, a cancel or a fill writes only the
rows it changed, in one transaction, so the cost of an order does not grow with the account's
history (the JSON file of earlier versions was rewritten whole — every result ever — on every
price update and order).

The database lives beside the account's name (``<db>.sim-exchange.json`` → ``<db>.sim-exchange.db``)
and not inside the trading database: it is the *venue's* account, which a restore of the trading
database must not roll back, as it would not roll back a real exchange's. Opening an account
only reads; the file is created by the first write.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

SCHEMA = """
CREATE TABLE IF NOT EXISTS sim_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sim_balances (asset TEXT PRIMARY KEY, amount TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sim_orders (client_order_id TEXT PRIMARY KEY, result TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sim_resting (order_id TEXT PRIMARY KEY, resting TEXT NOT NULL);
"""
SCHEMA_VERSION = 1


class SimStoreError(RuntimeError):
    """The store's file is not a simulated exchange account (damaged, or something else)."""


def store_path(state_path: Path) -> Path:
    """The account database for an account named ``state_path`` (``x.json`` → ``x.db``)."""
    return state_path.with_suffix(".db")


class SimAccountStore:
    """The rows of one simulated exchange account (``path=None``: in memory only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def load(self) -> dict[str, Any] | None:
        """``{"balances", "resting", "next_id"}`` of the stored account, or ``None`` when there
        is none yet. Reads only (no journal or lock file is made)."""
        if self._conn is None and (self.path is None or not self.path.is_file()):
            return None
        conn = self._conn or self._read_only()
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "sim_meta" not in tables:
                return None
            next_id = conn.execute("SELECT value FROM sim_meta WHERE key = 'next_id'").fetchone()
            if next_id is None:
                return None
            return {
                "next_id": int(next_id[0]),
                "balances": dict(conn.execute("SELECT asset, amount FROM sim_balances")),
                "resting": [
                    json.loads(r[0]) for r in conn.execute("SELECT resting FROM sim_resting")
                ],
            }
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise SimStoreError(f"{type(exc).__name__}: {exc}") from None
        finally:
            if conn is not self._conn:
                conn.close()

    def result(self, client_order_id: str) -> dict[str, Any] | None:
        """The stored result of the order ``client_order_id``, or ``None``."""
        if self._conn is None and (self.path is None or not self.path.is_file()):
            return None
        row = (
            self._writer()
            .execute("SELECT result FROM sim_orders WHERE client_order_id = ?", (client_order_id,))
            .fetchone()
        )
        return None if row is None else dict(json.loads(row[0]))

    def save(
        self,
        balances: dict[str, str],
        resting: list[dict[str, Any]],
        next_id: int,
        results: list[dict[str, Any]],
    ) -> None:
        """Write the account's balances, resting orders and next order id, and the results that
        changed, in one transaction (balances and resting orders are few; results are only
        those given)."""
        conn = self._writer()
        with conn:
            conn.execute(
                "INSERT OR REPLACE INTO sim_meta (key, value) VALUES ('next_id', ?)", (next_id,)
            )
            conn.execute("DELETE FROM sim_balances")
            conn.executemany(
                "INSERT INTO sim_balances (asset, amount) VALUES (?, ?)", balances.items()
            )
            conn.execute("DELETE FROM sim_resting")
            conn.executemany(
                "INSERT INTO sim_resting (order_id, resting) VALUES (?, ?)",
                ((r["order_id"], json.dumps(r)) for r in resting),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO sim_orders (client_order_id, result) VALUES (?, ?)",
                ((r["client_order_id"], json.dumps(r)) for r in results),
            )

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _read_only(self) -> sqlite3.Connection:
        assert self.path is not None
        # Without a write-ahead log every commit is in the file: read it immutable (nothing
        # created beside it); with one, read through SQLite's locks, read-only.
        wal = self.path.with_name(self.path.name + "-wal")
        mode = "mode=ro" if wal.exists() else "immutable=1"
        try:
            return sqlite3.connect(f"file:{quote(str(self.path))}?{mode}", uri=True)
        except sqlite3.Error as exc:
            raise SimStoreError(f"{type(exc).__name__}: {exc}") from None

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                if self.path is not None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                # One exchange object may be used from several threads (orders sent
                # concurrently); SimulatedExchange serialises its calls.
                conn = sqlite3.connect(
                    ":memory:" if self.path is None else str(self.path), check_same_thread=False
                )
                # WAL: a commit appends to the log instead of rewriting pages in place.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except sqlite3.DatabaseError as exc:
                raise SimStoreError(f"{type(exc).__name__}: {exc}") from None
            self._conn = conn
        return self._conn
