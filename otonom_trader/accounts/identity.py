"""Who an order's money belongs to: the *account* a book trades.

An account is one venue's one set of balances: the venue (``binance``, ``bybit``, ``sim``, or
``paper`` for the paper book), its environment (``testnet``, ``production``, ``sim``, ``paper``),
the endpoint (the API base URL; for the simulated exchange the file that holds its account), a
label a person chooses (``broker.label``, default ``main``) and a short fingerprint of the API key
(a hash, never the key). Two configurations that reach the same balances give the same id; a
change of any of these — another venue, testnet vs production, another URL, another label or key
— gives another id, and so another book, kill-switch, journal and snapshot history. The old book
stays in the database, readable.

    acct = Account.for_broker(app.broker, endpoint=...)
    acct.account_id   # 'binance-t-5d1c0e9a7b'  (venue, environment letter, 10 hex digits)
    acct.book         # the same: the account's broker book
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from otonom_trader.broker.config import BrokerConfig

PAPER_ACCOUNT_ID = "paper"


def shadow_paper_book(account_id: str) -> str:
    """The paper book that shadows ``account_id`` in SHADOW mode (one per account, so a paper
    book never mixes the history of two venues)."""
    return f"paper:{account_id}"


_VENUE_CHARS = re.compile(r"[^a-z0-9]+")


def key_fingerprint(api_key: str | None) -> str:
    """The first 8 hex digits of the key's SHA-256: tells keys apart, reveals nothing."""
    if not api_key:
        return ""
    return hashlib.sha256(api_key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Account:
    """A stable identity for one set of balances on one venue (see the module docstring)."""

    venue: str
    environment: str
    endpoint: str
    label: str = "main"
    key_fingerprint: str = ""

    @classmethod
    def paper(cls) -> Account:
        """The paper trader's own account (PAPER mode): its book is ``paper``."""
        return cls("paper", "paper", "", "main", "")

    @classmethod
    def for_broker(cls, cfg: BrokerConfig, *, sim_endpoint: str = "") -> Account:
        """The account a broker configuration trades. ``sim_endpoint`` names where the simulated
        exchange keeps its account (two databases have two simulated accounts)."""
        if cfg.kind == "sim":
            return cls("sim", "sim", sim_endpoint, cfg.label, "")
        environment = "testnet" if cfg.testnet else "production"
        return cls(
            cfg.kind.lower(),
            environment,
            (cfg.base_url or "").rstrip("/"),
            cfg.label,
            key_fingerprint(cfg.api_key),
        )

    @property
    def account_id(self) -> str:
        """``<venue>-<environment letter>-<10 hex>``, at most 25 characters; ``paper`` for the
        paper account. Fits every ``book`` column (32) with room for a ``paper:`` prefix."""
        if self.venue == "paper":
            return PAPER_ACCOUNT_ID
        text = "|".join(
            (self.venue, self.environment, self.endpoint, self.label, self.key_fingerprint)
        )
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        venue = _VENUE_CHARS.sub("", self.venue)[:12] or "venue"
        return f"{venue}-{self.environment[:1]}-{digest}"

    @property
    def book(self) -> str:
        """The book that records this account's fills (the broker book of SHADOW and LIVE)."""
        return self.account_id

    @property
    def shadow_paper_book(self) -> str:
        """The paper book that shadows this account in SHADOW mode."""
        return shadow_paper_book(self.account_id)

    def describe(self) -> str:
        """One line for people: venue, environment, endpoint, label (never the key)."""
        if self.venue == "paper":
            return "paper book"
        where = f" @ {self.endpoint}" if self.endpoint else ""
        key = f", key …{self.key_fingerprint}" if self.key_fingerprint else ""
        return f"{self.venue} ({self.environment}{where}), label {self.label!r}{key}"
