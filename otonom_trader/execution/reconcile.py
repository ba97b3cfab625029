"""Reconciliation: every cycle, before any signal, the book is compared with what its venue holds.

For each asset the book trades (a position row, open or closed), the venue's total balance (free
+ locked) is compared with the book's quantity. A difference beyond one lot step of that market
is a *drift*: recorded as a ``drift_events`` row with both numbers and a cause where one can be
told — the venue's trades after the last one the book booked are read (only then, to keep the
cycle's request budget) and any the book does not know are named —, announced once per episode
(an episode lasts until book and venue agree again), and handled by the policy:

* ``adopt`` — the venue is the truth: the book is set to the venue's quantity by a recorded
  ``book_adjustments`` entry. What was the book's keeps its cost basis; an increase enters at the
  venue's mark. The episode is resolved at once.
* ``halt`` — the account's kill-switch trips with reason ``reconciliation: …`` (a manual trip: a
  person looks, then resets).

The venue's open orders are compared with the journal: an open order the journal does not know
(placed by hand) is listed and announced once, never cancelled. Assets on the venue the book never
traded are listed in the summary and never sold. The quote
asset is not compared: a real account's book does not hold its cash (the guardrails read the
venue's own balance). The first reconciliation of a book with no fills adopts the venue's holdings
as its opening balance, without a drift.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.broker.errors import BrokerError, TemporaryBrokerError
from otonom_trader.execution.account_view import AccountView
from otonom_trader.execution.engine import AlertFn, ExecutionLeg, raise_alert
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.market.rules import rules_for
from otonom_trader.market.symbols import split
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.models import (
    BookAdjustment,
    BookPosition,
    DriftEvent,
    FillRecord,
    OrderRecord,
)
from otonom_trader.portfolio.ledger import refresh_average

log = logging.getLogger(__name__)

ADOPT = "adopt"
HALT = "halt"
_FALLBACK_STEP = Decimal("0.00000001")


@dataclass(frozen=True)
class AssetDrift:
    """One asset whose book quantity and venue balance differ beyond one lot step."""

    book: str
    asset: str
    book_qty: Decimal
    venue_qty: Decimal
    cause: str

    @property
    def difference(self) -> Decimal:
        """Venue minus book (positive: the venue holds more)."""
        return self.venue_qty - self.book_qty

    def describe(self) -> str:
        return (
            f"{self.book}: {self.asset} book {self.book_qty} vs exchange {self.venue_qty} "
            f"({self.cause})"
        )


@dataclass
class ReconcileReport:
    """What one reconciliation found and did."""

    drifts: list[AssetDrift] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)
    unknown_orders: list[str] = field(default_factory=list)
    adjusted: list[str] = field(default_factory=list)
    halted: bool = False
    skipped: str | None = None

    def describe(self) -> list[str]:
        """Notes for the run summary."""
        notes = [f"reconciliation drift: {d.describe()}" for d in self.drifts]
        if self.adjusted:
            notes.append(f"reconciliation adopted the exchange's {', '.join(self.adjusted)}")
        if self.halted:
            notes.append("reconciliation tripped the kill-switch (policy halt)")
        if self.unknown_orders:
            notes.append(
                "open on the exchange, not placed by this book (left alone): "
                + ", ".join(self.unknown_orders)
            )
        if self.untracked:
            notes.append(
                f"held on the exchange, never traded by this book (left alone): "
                f"{', '.join(sorted(self.untracked))}"
            )
        if self.skipped:
            notes.append(f"reconciliation skipped: {self.skipped}")
        return notes


class Reconciler:
    """Compares each leg's book with its venue (see the module docstring).

    Args:
        db: the trading database.
        kill_switch: the account's switch (tripped under the ``halt`` policy).
        policy: ``adopt`` or ``halt``.
        clock: aware UTC ``now``.
        alert: ``(message, dedupe_key)``, called once per drift episode.
    """

    def __init__(
        self,
        db: Database,
        kill_switch: KillSwitch,
        policy: str,
        clock: Callable[[], datetime],
        alert: AlertFn | None = None,
    ) -> None:
        if policy not in (ADOPT, HALT):
            raise ValueError(f"reconciliation policy must be adopt or halt, got {policy!r}")
        self.db = db
        self.kill_switch = kill_switch
        self.policy = policy
        self.clock = clock
        self._alert = alert

    def reconcile(self, leg: ExecutionLeg, pool: Executor | None = None) -> ReconcileReport:
        """Read ``leg``'s venue account for this cycle (``GuardedBroker.read_account``: the one
        read the whole cycle shares) and compare the book with it; record, announce and handle
        drifts."""
        report = ReconcileReport()
        try:
            view = leg.gate.read_account(leg.quote_asset, self.clock(), pool)
        except TemporaryBrokerError as exc:
            # The venue is briefly unreachable: the cycle goes on (its reads retry); a final
            # error — a refused key — ends the cycle here, in one attempt.
            report.skipped = f"{leg.book}: balances not available ({exc})"
            return report
        balances = view.totals()
        now = self.clock()
        self._compare_open_orders(leg, view, report)
        with self.db.session() as session:
            rows = {
                r.symbol: r
                for r in session.scalars(select(BookPosition).where(BookPosition.book == leg.book))
            }
            traded_assets = {split(symbol)[0] for symbol in rows}
            report.untracked = [
                asset
                for asset, amount in balances.items()
                if amount > 0 and asset != leg.quote_asset and asset not in traded_assets
            ]
            opening = (
                session.scalars(
                    select(FillRecord.id).where(FillRecord.book == leg.book).limit(1)
                ).first()
                is None
            )
            for symbol, row in sorted(rows.items()):
                base = split(symbol)[0]
                venue = balances.get(base, Decimal(0))
                step = _lot_step(symbol)
                open_episode = session.scalars(
                    select(DriftEvent).where(
                        DriftEvent.book == leg.book,
                        DriftEvent.asset == base,
                        DriftEvent.resolved_at.is_(None),
                    )
                ).first()
                if abs(venue - row.quantity) <= step:
                    if open_episode is not None:
                        open_episode.resolved_at = now
                    continue
                if opening:
                    self._adopt(session, leg, row, venue, "opening balance", report, now)
                    continue
                cause = self._unknown_trades(session, leg, symbol) or _cause(row, venue)
                drift = AssetDrift(leg.book, base, row.quantity, venue, cause)
                report.drifts.append(drift)
                if open_episode is None:
                    session.add(
                        DriftEvent(
                            book=leg.book,
                            asset=base,
                            book_qty=row.quantity,
                            venue_qty=venue,
                            cause=drift.cause,
                            policy=self.policy,
                            action="adjusted" if self.policy == ADOPT else "halted",
                            seen_at=now,
                            resolved_at=now if self.policy == ADOPT else None,
                        )
                    )
                    self._announce(drift)
                if self.policy == ADOPT:
                    self._adopt(session, leg, row, venue, f"adopt: {drift.cause}", report, now)
        if self.policy == HALT and report.drifts:
            reason = "reconciliation: " + "; ".join(d.describe() for d in report.drifts)
            self.kill_switch.trip(reason[:500], now, "reconciliation")
            report.halted = True
        return report

    def _adopt(
        self,
        session: Session,
        leg: ExecutionLeg,
        row: BookPosition,
        venue: Decimal,
        reason: str,
        report: ReconcileReport,
        now: datetime,
    ) -> None:
        before = row.quantity
        if venue < before:  # before > venue >= 0: what remains of the holding keeps its cost
            cost_change = row.cost_basis * venue / before - row.cost_basis
        else:  # what the venue holds beyond the book's enters at the venue's mark
            cost_change = (venue - before) * self._venue_mark(leg, row.symbol)
        row.cost_basis += cost_change
        row.quantity = venue
        refresh_average(row)
        row.updated_at = now
        session.add(
            BookAdjustment(
                book=leg.book,
                asset=split(row.symbol)[0],
                before_qty=before,
                after_qty=venue,
                cost_change=cost_change,
                reason=reason,
                at=now,
            )
        )
        report.adjusted.append(f"{split(row.symbol)[0]} {before} → {venue}")
        log.warning("%s: %s %s → %s (%s)", leg.book, row.symbol, before, venue, reason)

    def _compare_open_orders(
        self, leg: ExecutionLeg, view: AccountView, report: ReconcileReport
    ) -> None:
        orders = view.open_orders
        if orders is None:
            report.skipped = f"{leg.book}: open orders not available ({view.open_orders_error})"
            return
        if not orders:
            return
        ids = [o.client_order_id for o in orders if o.client_order_id]
        with self.db.session() as session:
            known = set(
                session.scalars(
                    select(OrderRecord.client_order_id).where(
                        OrderRecord.book == leg.book, OrderRecord.client_order_id.in_(ids)
                    )
                )
            )
        for order in orders:
            if order.client_order_id in known:
                continue
            label = (
                f"{order.side.value} {order.requested_quantity} {order.symbol} ({order.order_id})"
            )
            report.unknown_orders.append(label)
            self._announce_text(
                f"reconciliation: {leg.book}: open order on the exchange not placed by this "
                f"book: {label}; left alone",
                f"unknown-order:{leg.book}:{order.order_id}",
            )

    @staticmethod
    def _unknown_trades(session: Session, leg: ExecutionLeg, symbol: str) -> str | None:
        """The venue's trades in ``symbol`` after the book's last booked one that the book does
        not know, as a cause (``None`` when there are none or they cannot be read)."""
        booked = list(
            session.scalars(
                select(FillRecord.exchange_trade_id)
                .where(FillRecord.book == leg.book, FillRecord.symbol == symbol)
                .order_by(FillRecord.id.desc())
                .limit(200)
            )
        )
        try:
            trades = leg.gate.fetch_trades_since(symbol, booked[0] if booked else None)
        except (BrokerError, NotImplementedError):
            return None
        known = set(booked)
        unknown = [t for t in trades if t.trade_id not in known]
        if not unknown:
            return None
        listed = ", ".join(f"#{t.trade_id} {t.quantity} at {t.price}" for t in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        return f"unknown trade(s) on the exchange: {listed}{more}"[:64]

    @staticmethod
    def _venue_mark(leg: ExecutionLeg, symbol: str) -> Decimal:
        try:
            for position in leg.gate.get_open_positions():
                if position.symbol == symbol and position.mark_price:
                    return position.mark_price
        except BrokerError:
            pass
        return Decimal(0)

    def _announce(self, drift: AssetDrift) -> None:
        self._announce_text(
            f"reconciliation: {drift.describe()}; policy {self.policy}",
            f"drift:{drift.book}:{drift.asset}",
        )

    def _announce_text(self, message: str, dedupe_key: str) -> None:
        raise_alert(self._alert, message, dedupe_key)


def _lot_step(symbol: str) -> Decimal:
    try:
        return rules_for(symbol).lot_step
    except BrokerError:
        return _FALLBACK_STEP


def _cause(row: BookPosition, venue: Decimal) -> str:
    """Where a difference most likely comes from (a guess, said as one)."""
    difference = venue - row.quantity
    if row.quantity > 0 and abs(difference) <= row.quantity * Decimal("0.002"):
        return "fee not booked (about 0.1 % of the holding)"
    if difference > 0:
        return "unknown trade or deposit on the exchange"
    return "unknown trade or withdrawal on the exchange"
