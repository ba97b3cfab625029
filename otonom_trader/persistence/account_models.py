"""Account tables: the accounts the books belong to, and who holds each account's lease.

* ``accounts``: one row per account ever traded (``otonom_trader.accounts.identity.Account``):
  venue, environment, endpoint, label, key fingerprint (never the key), its book, the bot (strategy
  name and version) that last traded it, first and last use.
* ``account_leases``: the holder of an account's lease (owner run, pid, host, since), written by
  the holder after it took the lock so a waiting cycle can say who it waits for.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from otonom_trader.persistence.models import Base, utc_now


class AccountRecord(Base):
    """An account and its book."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    venue: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    endpoint: Mapped[str] = mapped_column(String(512), default="")
    label: Mapped[str] = mapped_column(String(64), default="main")
    key_fingerprint: Mapped[str] = mapped_column(String(16), default="")
    book: Mapped[str] = mapped_column(String(32))
    bot: Mapped[str | None] = mapped_column(String(160))
    adopted_from: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_used_at: Mapped[datetime] = mapped_column(default=utc_now)


class AccountLeaseRecord(Base):
    """Who holds an account's lease (informational; the lock itself is the truth)."""

    __tablename__ = "account_leases"

    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str] = mapped_column(String(64), default="")
    since: Mapped[datetime] = mapped_column(default=utc_now)
