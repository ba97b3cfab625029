"""The execution engine: the one place where an intent becomes an order on a book.

Every book a cycle trades is an :class:`ExecutionLeg` — its role (``paper`` or ``broker``, the
shadow ledger's leg names), the ledger book that records it, and the gate (``GuardedBroker``)
that is the only way to its venue. For every leg alike the engine

1. derives the order's client id from the intent (account, bot, symbol, side, candle, leg), so a
   restarted or overlapping cycle for the same candle computes the same id;
2. journals it before sending; an id the journal already holds as sent is never sent again;
3. sends it through the gate (kill-switch, venue) and books the fill on the leg's ledger book
   (once per order, whoever books first: the paper venue books its own fills);
4. in SHADOW, records both legs of each intent as a shadow pair.

``recover`` runs first in every cycle (under the account's lease): each journaled order of an
earlier cycle that is not final is looked up on its venue by client order id, its fill booked
exactly once; an order the venue does not know is ``not_sent`` (it may be sent again) unless it is
so young that it could still be in flight, in which case it stays ``unknown`` and blocks its
symbol and side, with one alert, until a later cycle resolves it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.broker.errors import (
    AmbiguousOrderError,
    BadExchangeReplyError,
    BrokerError,
    KillSwitchError,
)
from otonom_trader.broker.guarded import GuardedBroker
from otonom_trader.broker.types import OrderFill, OrderRequest, OrderSide, OrderStatus
from otonom_trader.daemon.summary import OrderLine
from otonom_trader.execution.journal import (
    OPEN_STATUSES,
    already_sent,
    intent_client_order_id,
    intent_key,
    journal_order,
    record_failure,
    record_fill,
)
from otonom_trader.market.rules import rules_for
from otonom_trader.market.symbols import split
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.models import BookPosition, OrderRecord
from otonom_trader.portfolio.ledger import apply_fill, ensure_account
from otonom_trader.shadow.ledger import ShadowLedger, ShadowLeg
from otonom_trader.strategy.signals import OrderIntent

log = logging.getLogger(__name__)

PAPER_ROLE = "paper"
BROKER_ROLE = "broker"

#: ``alert(message, dedupe_key)``: how the engine raises an alert (never raises itself).
AlertFn = Callable[[str, str], None]


@dataclass(frozen=True)
class ExecutionLeg:
    """One book the engine trades: its role, the ledger book recording it, and its gate.

    ``bot_book`` is a named bot's own book on a shared account (``otonom_trader.fleet.books``):
    every fill of the leg is booked on ``book`` (the account, equal to the exchange) *and* on it,
    and the bot sells only what its own book holds."""

    role: str
    book: str
    gate: GuardedBroker
    quote_asset: str
    bot_book: str | None = None

    @property
    def holding_book(self) -> str:
        """The book whose positions this leg's bot may sell."""
        return self.bot_book or self.book


@dataclass(frozen=True)
class LegResult:
    """What happened to one leg of one intent."""

    line: OrderLine
    fill: OrderFill | None
    error: BaseException | None


@dataclass
class RecoveryReport:
    """What ``recover`` found: orders resolved from the venue, orders still unknown."""

    resolved: list[str] = field(default_factory=list)
    not_sent: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    blocked: set[tuple[str, str, str]] = field(default_factory=set)  # (book, symbol, side)

    def describe(self) -> list[str]:
        """Notes for the run summary (empty when there was nothing to recover)."""
        notes = []
        if self.resolved:
            notes.append(f"recovered {len(self.resolved)} order(s) of an earlier cycle")
        if self.not_sent:
            notes.append(f"{len(self.not_sent)} journaled order(s) never reached the venue")
        for book, symbol, side in sorted(self.blocked):
            notes.append(f"{book}: {side} {symbol} blocked until its unresolved order resolves")
        return notes


class ExecutionEngine:
    """Journals, sends through the gate, books fills and pairs SHADOW legs — for every leg alike.

    Args:
        db: the trading database (journal, ledger, shadow ledger).
        legs: the books to trade, in sending order (SHADOW: paper, then broker).
        account_id: the executing account (part of every client order id).
        bot: strategy name and version (part of every client order id).
        bot_name: the named bot of a fleet (``None``: the unnamed bot): written on every order
            and part of its client order id, so two bots on one account never share one.
        mode: the execution mode's name, recorded on each journal row.
        clock: aware UTC ``now``.
        alert: called with ``(message, dedupe_key)`` for broker errors and unresolved orders.
        shadow: record a shadow pair per intent (SHADOW mode).
        ambiguity_window_s: an order younger than this and unknown to the venue may still be in
            flight: it stays unknown instead of ``not_sent``.
        price_band_pct: a fill price further than this from the signal's mark is not believed.
        pool: threads to send the orders of different symbols in parallel (``None``: one by one).
    """

    def __init__(
        self,
        db: Database,
        legs: Sequence[ExecutionLeg],
        *,
        account_id: str,
        bot: str,
        mode: str,
        clock: Callable[[], datetime],
        alert: AlertFn | None = None,
        shadow: bool = False,
        ambiguity_window_s: float = 15.0,
        price_band_pct: float = 10.0,
        pool: Executor | None = None,
        bot_name: str | None = None,
    ) -> None:
        self.db = db
        self.legs = tuple(legs)
        self.account_id = account_id
        self.bot = bot
        self.bot_name = bot_name
        self.mode = mode
        self.clock = clock
        self._alert = alert
        self._shadow = ShadowLedger(db) if shadow else None
        self._window = timedelta(seconds=ambiguity_window_s)
        self._band = Decimal(str(price_band_pct)) / 100
        self.blocked: set[tuple[str, str, str]] = set()
        self._pool = pool
        # The database work of orders sent in parallel is done one order at a time.
        self._db_lock = threading.RLock()

    # ------------------------------------------------------------------ recovery

    def recover(self) -> RecoveryReport:
        """Resolve every journaled order an earlier cycle left open (see the module doc)."""
        report = RecoveryReport()
        for leg in self.legs:
            with self.db.session() as session:
                pending = list(
                    session.scalars(
                        select(OrderRecord)
                        .where(
                            OrderRecord.book == leg.book,
                            # This bot's own orders only: another bot on the same account
                            # resolves its own (and books them on its own book).
                            OrderRecord.bot.is_(None)
                            if self.bot_name is None
                            else OrderRecord.bot == self.bot_name,
                            OrderRecord.status.in_([s.value for s in OPEN_STATUSES]),
                        )
                        .order_by(OrderRecord.id)
                    )
                )
            # The venue is asked about every pending order at once; what it says is booked
            # one order at a time, in journal order.
            look_up = functools.partial(self._look_up, leg)
            lookups = (
                self._pool.map(look_up, pending)
                if self._pool is not None and leg.gate.concurrent_orders and len(pending) > 1
                else map(look_up, pending)
            )
            for record, found in zip(pending, list(lookups), strict=True):
                self._recover_one(leg, record, found, report)
        self.blocked = set(report.blocked)
        return report

    @staticmethod
    def _look_up(leg: ExecutionLeg, record: OrderRecord) -> OrderFill | None | Exception:
        """The venue's record of a journaled order (``None``: unknown to it), or why it could
        not be looked up."""
        try:
            return leg.gate.fetch_order_by_client_id(record.symbol, record.client_order_id)
        except (BrokerError, NotImplementedError) as exc:
            return exc

    def _recover_one(
        self,
        leg: ExecutionLeg,
        record: OrderRecord,
        found: OrderFill | None | Exception,
        report: RecoveryReport,
    ) -> None:
        cid = record.client_order_id
        if isinstance(found, Exception):
            self._keep_unresolved(leg, record, report, f"could not be looked up: {found}")
            return
        now = self.clock()
        with self.db.session() as session:
            row = session.get(OrderRecord, record.id)
            assert row is not None
            if OrderStatus(row.status) not in OPEN_STATUSES:
                return  # resolved meanwhile (cannot happen under the lease; cheap to respect)
            problem = None
            if found is not None:
                problem = self.implausible(found, row.requested_qty, row.signal_price)
            if found is not None and problem is None:
                record_fill(row, found, now)
                if found.quantity > 0:
                    _book_fill(session, leg, row, found, now)
                if OrderStatus(row.status) in OPEN_STATUSES:
                    report.blocked.add((leg.book, row.symbol, row.side))
                report.resolved.append(cid)
                log.warning("recovered order %s from the venue: %s", cid, found.status.value)
                return
            if problem is not None:
                pass  # the venue's own records cannot be believed either: stays unresolved
            elif not (now - row.created_at < self._window) or leg.gate.reports_orders_instantly:
                record_failure(
                    row,
                    OrderStatus.NOT_SENT,
                    "the venue does not know this order: it was never placed",
                    now,
                )
                report.not_sent.append(cid)
                return
        self._keep_unresolved(
            leg, record, report, problem or "not found on the venue yet; may be in flight"
        )

    def _keep_unresolved(
        self, leg: ExecutionLeg, record: OrderRecord, report: RecoveryReport, why: str
    ) -> None:
        """Mark the order unknown and block its symbol and side; alert when it *becomes*
        unknown (one alert per unresolved order, not one per cycle)."""
        report.unresolved.append(record.client_order_id)
        report.blocked.add((leg.book, record.symbol, record.side))
        with self.db.session() as session:
            row = session.get(OrderRecord, record.id)
            assert row is not None
            status = OrderStatus(row.status)
            # An anomalous order was announced when its reply came; it stays anomalous.
            newly = status not in (OrderStatus.UNKNOWN, OrderStatus.ANOMALOUS)
            if status is not OrderStatus.ANOMALOUS:
                record_failure(row, OrderStatus.UNKNOWN, why, self.clock())
        if newly:
            self._raise_alert(
                f"order {record.client_order_id} ({record.side} {record.symbol}, {leg.book}) "
                f"is unresolved ({why}); no new {record.side} {record.symbol} until it resolves",
                f"unresolved-order:{record.client_order_id}",
            )

    # ------------------------------------------------------------------ execution

    def execute(self, intents: Sequence[OrderIntent], run_id: str) -> list[OrderLine]:
        """Send every intent to every leg; journal first, never twice.

        With a pool and venues that take concurrent orders, the symbols go out in parallel —
        each symbol's intents one after another, each intent's legs in order — and the lines
        come back in the intents' order, as if sent one by one. The database work of every
        order (journal, kill-switch check, booking) is done one order at a time; only the
        venues' replies are awaited together."""
        by_symbol: dict[str, list[int]] = {}
        for index, intent in enumerate(intents):
            by_symbol.setdefault(intent.symbol, []).append(index)
        lines_of: dict[int, list[OrderLine]] = {}

        def send_symbol(indexes: list[int]) -> None:
            for index in indexes:
                lines_of[index] = self._execute_intent(intents[index], run_id)

        parallel = (
            self._pool is not None
            and len(by_symbol) > 1
            and all(leg.gate.concurrent_orders or leg.role == PAPER_ROLE for leg in self.legs)
            and any(leg.gate.concurrent_orders for leg in self.legs)
        )
        if parallel:
            assert self._pool is not None
            futures = [self._pool.submit(send_symbol, idx) for idx in by_symbol.values()]
            try:
                wait(futures)
            finally:
                # Interrupted (Ctrl-C, a signal): symbols not started are not sent, and the
                # cycle — and with it the account's lease — never ends while an order of it is
                # still in flight or unbooked.
                for future in futures:
                    future.cancel()
                wait(futures)
            for future in futures:
                future.result()  # a bug in any symbol's thread is raised here, after all ended
        else:
            send_symbol(list(range(len(intents))))
        return [line for index in range(len(intents)) for line in lines_of[index]]

    def _execute_intent(self, intent: OrderIntent, run_id: str) -> list[OrderLine]:
        results: dict[str, LegResult] = {}
        for leg in self.legs:
            results[leg.role] = self._send(leg, intent, run_id)
        if self._shadow is not None and {PAPER_ROLE, BROKER_ROLE} <= set(results):
            with self._db_lock:
                self._record_shadow_pair(run_id, intent, results[PAPER_ROLE], results[BROKER_ROLE])
        return [result.line for result in results.values()]

    def key_of(self, intent: OrderIntent, run_id: str) -> str:
        """The intent's identity: the same in every run for one candle (see the journal)."""
        return intent_key(
            account=self.account_id,
            bot=self.bot if self.bot_name is None else f"{self.bot_name}|{self.bot}",
            symbol=intent.symbol,
            side=intent.side.value,
            candle=intent.candle_time or f"run:{run_id}",
        )

    def _send(self, leg: ExecutionLeg, intent: OrderIntent, run_id: str) -> LegResult:
        if leg.gate.concurrent_orders:
            # Only the venue's reply is awaited outside the database lock.
            return self._send_one(leg, intent, run_id)
        with self._db_lock:
            return self._send_one(leg, intent, run_id)

    def _send_one(self, leg: ExecutionLeg, intent: OrderIntent, run_id: str) -> LegResult:
        with self._db_lock:
            prepared = self._prepare(leg, intent, run_id)
        if isinstance(prepared, LegResult):
            return prepared
        request, quantity = prepared
        fill: OrderFill | None = None
        error: BaseException | None = None
        anomaly: str | None = None
        try:
            if quantity <= 0:
                raise BrokerError(f"{leg.book} book holds no {split(intent.symbol)[0]} to sell")
            with self._db_lock:  # the kill-switch check writes its state: one at a time
                leg.gate.admit(request)
            fill = leg.gate.transmit(request)
            anomaly = self.implausible(fill, request.quantity, intent.signal_price)
        except BadExchangeReplyError as exc:  # it was sent; what came back cannot be read
            anomaly = str(exc)
        except BrokerError as exc:  # AmbiguousOrderError included: recorded as UNKNOWN below
            error = exc
        if anomaly is not None:
            fill = self._believable_from_venue(leg, request, intent.signal_price, anomaly)
        with self._db_lock:
            result = self._book(leg, intent, request, fill, error, anomaly)
        if error is not None and not isinstance(error, KillSwitchError) and leg.role == BROKER_ROLE:
            assert request.client_order_id is not None
            self._raise_alert(
                f"{intent.side.value} {intent.symbol}: {error}",
                f"broker-error:{request.client_order_id}",
            )
        return result

    def _prepare(
        self, leg: ExecutionLeg, intent: OrderIntent, run_id: str
    ) -> LegResult | tuple[OrderRequest, Decimal]:
        """The order's request and the quantity it may sell, journaled before anything is
        sent; or the line of an order that is not to be sent (blocked, already sent)."""
        cid = intent_client_order_id(self.key_of(intent, run_id), leg.role)
        quantity = intent.quantity
        if intent.side is OrderSide.SELL:
            quantity = self._sellable(leg, intent)
        request = OrderRequest(
            intent.symbol,
            intent.side,
            quantity if quantity > 0 else intent.quantity,
            client_order_id=cid,
            reference_price=intent.signal_price,
        )
        if (leg.book, intent.symbol, intent.side.value) in self.blocked:
            # Not even journaled: the intent waits until the unresolved order resolves.
            note = "blocked: an earlier order for this symbol and side is unresolved"
            line = _unsent_line(
                leg.book, intent.symbol, intent.side.value, request.quantity, cid, "blocked", note
            )
            return LegResult(line, None, None)
        with self.db.session() as session:
            record = journal_order(
                session,
                request,
                book=leg.book,
                mode=self.mode,
                run_id=run_id,
                signal_price=intent.signal_price,
                now=self.clock(),
                bot=self.bot_name,
                account_id=self.account_id,
            )
            if already_sent(record):
                note = (
                    f"already sent for this candle (earlier outcome: {record.status}, "
                    f"{record.filled_qty} filled); not resent"
                )
                line = _unsent_line(
                    record.book,
                    record.symbol,
                    record.side,
                    record.requested_qty,
                    record.client_order_id,
                    "already_sent",
                    note,
                )
                return LegResult(line, None, None)
        return request, quantity

    def _book(
        self,
        leg: ExecutionLeg,
        intent: OrderIntent,
        request: OrderRequest,
        fill: OrderFill | None,
        error: BaseException | None,
        anomaly: str | None,
    ) -> LegResult:
        """Record what the venue did with the order, and book its fill."""
        cid = request.client_order_id
        with self.db.session() as session:
            record = session.scalars(
                select(OrderRecord).where(OrderRecord.client_order_id == cid)
            ).one()
            done = self.clock()
            if fill is not None:
                record_fill(record, fill, done)
                _book_fill(session, leg, record, fill, done)
                leg.gate.note_fill(fill)
            elif anomaly is not None:
                record_failure(record, OrderStatus.ANOMALOUS, anomaly, done)
                self.blocked.add((leg.book, intent.symbol, intent.side.value))
                leg.gate.note_unknown_outcome()
            elif isinstance(error, AmbiguousOrderError):
                record_failure(record, OrderStatus.UNKNOWN, str(error), done)
                self.blocked.add((leg.book, intent.symbol, intent.side.value))
                leg.gate.note_unknown_outcome()
            elif isinstance(error, KillSwitchError):
                # Refused at the gate: it never left, so once the switch clears (a manual reset
                # within the same candle) the same intent may still be sent.
                record_failure(record, OrderStatus.NOT_SENT, str(error), done)
            else:
                record_failure(record, OrderStatus.REJECTED, str(error), done)
            line = _line_from_record(record)
        return LegResult(line, fill, error)

    def implausible(
        self, fill: OrderFill, requested: Decimal, signal_price: Decimal | None
    ) -> str | None:
        """Why a venue's report of a fill cannot be believed, or ``None`` when it can
        (``implausible_fill`` with this engine's price band)."""
        return implausible_fill(fill, requested, signal_price, self._band)

    def _believable_from_venue(
        self, leg: ExecutionLeg, request: OrderRequest, signal_price: Decimal, anomaly: str
    ) -> OrderFill | None:
        """Look an anomalous order up in the venue's own records; its fill if that is believable
        (then the reply is forgotten), else ``None`` (the order stays anomalous, one alert)."""
        assert request.client_order_id is not None
        looked_up: OrderFill | None = None
        try:
            looked_up = leg.gate.fetch_order_by_client_id(request.symbol, request.client_order_id)
        except (BrokerError, NotImplementedError) as exc:
            anomaly += f"; lookup failed: {exc}"
        if looked_up is not None:
            problem = self.implausible(looked_up, request.quantity, signal_price)
            if problem is None:
                log.warning(
                    "order %s: %s; booked from the venue's records instead",
                    request.client_order_id,
                    anomaly,
                )
                return looked_up
            anomaly += f"; its records say: {problem}"
        self._raise_alert(
            f"order {request.client_order_id} ({request.side.value} {request.symbol}, "
            f"{leg.book}) is anomalous: {anomaly}; nothing booked, "
            f"{request.side.value} {request.symbol} blocked until it resolves",
            f"anomalous-order:{request.client_order_id}",
        )
        return None

    def _sellable(self, leg: ExecutionLeg, intent: OrderIntent) -> Decimal:
        """A sell never exceeds what the leg's book holds, nor what its venue holds free. An exit
        (target flat) sells all of this leg's own holding — in SHADOW each book works toward the
        same target on its own holdings, so neither keeps a remainder the strategy no longer
        wants."""
        with self.db.session() as session:
            # this symbol's row, of the bot's own book when it shares the account
            position = session.get(BookPosition, (leg.holding_book, intent.symbol))
            held = position.quantity if position is not None else Decimal(0)
        held = max(held, Decimal(0))
        base = split(intent.symbol)[0]
        view = leg.gate.account_view
        if view is not None:  # the cycle's account read, with this cycle's fills applied
            free = view.free(base)
        else:
            free = sum((b.free for b in leg.gate.get_balances() if b.asset == base), Decimal(0))
        wanted = held if intent.target_flat else intent.quantity
        quantity = min(wanted, held, free)
        try:
            return rules_for(intent.symbol).round_quantity(quantity)
        except BrokerError:
            return quantity

    def _record_shadow_pair(
        self, run_id: str, intent: OrderIntent, paper: LegResult, broker: LegResult
    ) -> None:
        assert self._shadow is not None

        def leg(result: LegResult) -> ShadowLeg:
            if result.fill is not None:
                return ShadowLeg.from_fill(result.fill)
            if result.error is not None:
                return ShadowLeg.from_error(result.error, result.line.client_order_id)
            return ShadowLeg.skipped(result.line.error or "not sent", result.line.client_order_id)

        self._shadow.record(
            run_id=run_id,
            intent_id=self.key_of(intent, run_id),
            symbol=intent.symbol,
            side=intent.side,
            requested_qty=intent.quantity,
            signal_price=intent.signal_price,
            paper=leg(paper),
            broker=leg(broker),
            at=self.clock(),
            bot=self.bot_name,
            account_id=self.account_id,
        )

    def _raise_alert(self, message: str, dedupe_key: str) -> None:
        with self._db_lock:  # an alert is an outbox row: database work, one at a time
            raise_alert(self._alert, message, dedupe_key)


def implausible_fill(
    fill: OrderFill, requested: Decimal, signal_price: Decimal | None, band: Decimal
) -> str | None:
    """Why a venue's report of a fill cannot be believed, or ``None`` when it can: a negative
    or oversized quantity, a filled quantity without a price, trades that do not add up, or a
    price off the signal's mark by more than ``band`` (a fraction). Pure: the engine and the
    backtest's in-memory order path both ask it."""
    limit = max(requested, fill.requested_quantity)
    if fill.quantity < 0:
        return f"the venue reported a negative filled quantity ({fill.quantity})"
    if fill.quantity > limit:
        return f"the venue reported {fill.quantity} filled of {limit} requested"
    if fill.quantity > 0 and (fill.price is None or fill.price <= 0):
        return f"the venue reported {fill.quantity} filled without a valid price"
    if fill.trades:
        traded = sum((t.quantity for t in fill.trades), Decimal(0))
        if traded != fill.quantity or any(t.quantity <= 0 for t in fill.trades):
            return f"the venue's trades add up to {traded}, its order to {fill.quantity}"
        if any(t.fee < 0 for t in fill.trades):
            return "the venue reported a negative fee"
    prices = [t.price for t in fill.trades] or ([fill.price] if fill.price else [])
    if signal_price and signal_price > 0:
        for price in prices:
            if abs(price - signal_price) / signal_price > band:
                return (
                    f"fill price {price} is more than {band * 100:g}% off the signal's "
                    f"mark {signal_price}"
                )
    return None


def _book_fill(
    session: Session, leg: ExecutionLeg, record: OrderRecord, fill: OrderFill, now: datetime
) -> None:
    """Book a fill on the leg's book and, for a named bot sharing the account, on the bot's
    own book too (each books a venue trade once: a repeat changes nothing)."""
    for book in (leg.book, leg.bot_book):
        if book is not None:
            ensure_account(session, book, Decimal(0), leg.quote_asset)
            apply_fill(session, book, record, fill, now)


def raise_alert(alert: AlertFn | None, message: str, dedupe_key: str) -> None:
    """Log ``message`` and hand it to ``alert``; an alert that fails never breaks trading."""
    log.warning("%s", message)
    if alert is None:
        return
    try:
        alert(message, dedupe_key)
    except Exception:  # noqa: BLE001 - alerts never break trading
        log.warning("alert failed; trading continues", exc_info=True)


def _line_from_record(record: OrderRecord) -> OrderLine:
    return OrderLine(
        book=record.book,
        symbol=record.symbol,
        side=record.side,
        requested_qty=record.requested_qty,
        status=record.status,
        filled_qty=record.filled_qty,
        price=record.avg_fill_price,
        fee=record.fee,
        client_order_id=record.client_order_id,
        error=record.error,
    )


def _unsent_line(
    book: str,
    symbol: str,
    side: str,
    requested: Decimal,
    client_order_id: str,
    status: str,
    note: str,
) -> OrderLine:
    """A leg this run did not send: nothing of it filled in this run."""
    return OrderLine(
        book=book,
        symbol=symbol,
        side=side,
        requested_qty=requested,
        status=status,
        filled_qty=Decimal(0),
        price=None,
        fee=Decimal(0),
        client_order_id=client_order_id,
        error=note,
    )
