"""One writer per account: an exclusive lease a cycle holds from before it reads balances until it
ends.

Two cycles on one account — a cron run and a manual run, two deployments, a CLI run beside a
flow — would each read the same balances and each send the same order. The lease makes the
second one wait (a bounded time) and then end without sending anything, saying who holds the
account and since when.

How the lease is held, so that a dead holder never blocks the account and a live one is never
broken:

* **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) on a connection kept
  open for the cycle. The server drops it when the holder's connection ends — a SIGKILLed process
  included (its socket closes).
* **SQLite file**: an exclusive ``flock`` on a lock file beside the database
  (``<db>.accounts/<account>.lock``). The kernel drops it when the holder's process dies.
* **SQLite in memory**: only one process can see such a database; a process-wide lock.

Who holds the lease (owner, pid, host, since) is written to ``account_leases`` after it is taken,
only to tell the waiting cycle; the lock itself is the truth.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from sqlalchemy import text

from otonom_trader.persistence.account_models import AccountLeaseRecord
from otonom_trader.persistence.database import Database

_POLL_SECONDS = 0.05
_MEMORY_LOCKS: dict[tuple[int, str], threading.Lock] = {}
_MEMORY_GUARD = threading.Lock()


class AccountBusyError(Exception):
    """Another live cycle holds the account; nothing was read or sent."""

    def __init__(self, account_id: str, holder: LeaseHolder | None, waited_s: float) -> None:
        self.account_id = account_id
        self.holder = holder
        self.waited_s = waited_s
        who = holder.describe() if holder is not None else "another cycle (not yet recorded)"
        super().__init__(
            f"account {account_id} is leased by {who}; waited {waited_s:.1f} s, "
            "ended without trading"
        )


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds an account's lease, as recorded by the holder."""

    owner: str
    pid: int
    host: str
    since: datetime

    def describe(self) -> str:
        """``run 3f2a… (pid 4242 on host-a) since 2026-11-29 20:01:02 UTC``."""
        return (
            f"{self.owner} (pid {self.pid} on {self.host}) since {self.since:%Y-%m-%d %H:%M:%S} UTC"
        )


def advisory_key(account_id: str) -> int:
    """A signed 64-bit key for ``pg_advisory_lock``, stable across processes and versions."""
    digest = hashlib.sha256(f"otonom-account:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AccountLease:
    """The exclusive lease of ``account_id`` in ``db``; a context manager.

    Args:
        db: the trading database (its dialect chooses how the lease is held).
        account_id: the account (``Account.account_id``).
        owner: who asks (a run id); recorded for the message a waiting cycle prints.
        wait_seconds: how long ``acquire`` waits for a live holder before giving up.
        sleep, monotonic, clock: injectable for tests.
    """

    def __init__(
        self,
        db: Database,
        account_id: str,
        *,
        owner: str,
        wait_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.account_id = account_id
        self.owner = owner[:64]
        self.wait_seconds = wait_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._clock = clock
        self._release: Callable[[], None] | None = None
        self.waited_s = 0.0

    @property
    def held(self) -> bool:
        """True between a successful ``acquire`` and ``release``."""
        return self._release is not None

    def acquire(self) -> None:
        """Take the lease, waiting up to ``wait_seconds``; raise ``AccountBusyError`` if a live
        holder keeps it that long."""
        if self._release is not None:
            return
        try_once = self._strategy()
        started = self._monotonic()
        while True:
            release = try_once()
            if release is not None:
                self._release = release
                self.waited_s = self._monotonic() - started
                self._record_holder()
                return
            waited = self._monotonic() - started
            if waited >= self.wait_seconds:
                raise AccountBusyError(self.account_id, self.holder(), waited)
            self._sleep(min(_POLL_SECONDS, max(0.0, self.wait_seconds - waited)))

    def release(self) -> None:
        """Give the lease back (idempotent)."""
        release, self._release = self._release, None
        if release is None:
            return
        try:
            with self.db.session() as session:
                row = session.get(AccountLeaseRecord, self.account_id)
                if row is not None and row.owner == self.owner:
                    session.delete(row)
        finally:
            release()

    def holder(self) -> LeaseHolder | None:
        """The recorded holder of this account's lease, if any."""
        with self.db.session() as session:
            row = session.get(AccountLeaseRecord, self.account_id)
            if row is None:
                return None
            return LeaseHolder(row.owner, row.pid, row.host, row.since)

    def __enter__(self) -> AccountLease:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # ------------------------------------------------------------------ internals

    def _record_holder(self) -> None:
        with self.db.session() as session:
            row = session.get(AccountLeaseRecord, self.account_id)
            if row is None:
                row = AccountLeaseRecord(account_id=self.account_id)
                session.add(row)
            row.owner = self.owner
            row.pid = os.getpid()
            row.host = socket.gethostname()[:64]
            row.since = self._clock()

    def _strategy(self) -> Callable[[], Callable[[], None] | None]:
        if self.db.dialect == "postgresql":
            return self._try_advisory_lock
        database = self.db.engine.url.database
        if database in (None, "", ":memory:"):
            return self._try_memory_lock
        return self._file_lock_attempt(Path(database))

    def _try_advisory_lock(self) -> Callable[[], None] | None:
        key = advisory_key(self.account_id)
        conn = self.db.engine.connect()
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one()
            )
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return None

        def release() -> None:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            finally:
                conn.close()  # closing ends the session, which drops the lock in any case

        return release

    def _try_memory_lock(self) -> Callable[[], None] | None:
        with _MEMORY_GUARD:
            lock = _MEMORY_LOCKS.setdefault((id(self.db.engine), self.account_id), threading.Lock())
        if not lock.acquire(blocking=False):
            return None
        return lock.release

    def _file_lock_attempt(self, database: Path) -> Callable[[], Callable[[], None] | None]:
        import fcntl

        folder = database.parent / f"{database.name}.accounts"
        path = folder / f"{self.account_id}.lock"

        def attempt() -> Callable[[], None] | None:
            folder.mkdir(parents=True, exist_ok=True)
            handle: IO[Any] = open(path, "a+")  # noqa: SIM115 - held open while leased
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return None
            except BaseException:
                handle.close()
                raise

            def release() -> None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                finally:
                    handle.close()

            return release

        return attempt
