"""One read of a venue account per cycle, shared by everything that needs it.

At the start of a cycle (under the account's lease, after recovery) each leg's venue is read once:
its balances and its open orders, at the same time. Reconciliation compares the book with that
read; sizing, the guardrails, the per-order kill-switch check, the sell-size check and the
snapshot all value the account from it, with this cycle's own fills applied as the venue reported
them (their trades and the fee in the asset it was charged in). Nothing in the cycle asks the venue
for the balance again — a cycle of 100 orders reads the account once, not 500 times — and the
next cycle's reconciliation checks the result against a fresh read.

Marks of held assets that the candles do not price come from one request for all of them
(``Broker.last_prices``), made at most once per cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from otonom_trader.broker.types import Balance, OrderFill, OrderSide, Position
from otonom_trader.portfolio.ledger import BookValuation

if TYPE_CHECKING:
    from otonom_trader.broker.base import Broker

ZERO = Decimal(0)


@dataclass
class AccountView:
    """A venue account as read at ``read_at``, kept current with the fills booked since.

    ``open_orders`` is ``None`` when the venue could not list them (``open_orders_error`` says
    why). Thread-safe: the cycle's order threads apply their fills concurrently.
    """

    quote_asset: str
    read_at: datetime
    balances: dict[str, Balance]
    open_orders: list[OrderFill] | None
    open_orders_error: str | None = None
    venue_marks: dict[str, Decimal] = field(default_factory=dict)
    asked_marks: set[str] = field(default_factory=set)
    fills_applied: int = 0
    #: An order of this cycle had an outcome the view cannot apply (its reply was not believed,
    #: or it is unknown): the venue's balances may have moved; read them again before use.
    stale: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def read(
        cls, venue: Broker, quote_asset: str, now: datetime, pool: Executor | None = None
    ) -> AccountView:
        """Read balances and open orders (both requests at once when ``pool`` is given).
        A failure to read the balances is raised; open orders that cannot be listed are noted."""
        open_orders: list[OrderFill] | None = None
        error: str | None = None
        if pool is not None:
            orders_future = pool.submit(venue.fetch_open_orders)
            balances = venue.get_balances()
            try:
                open_orders = orders_future.result()
            except Exception as exc:  # noqa: BLE001 - re-raised below unless it is expected
                open_orders, error = None, _open_orders_error(exc)
        else:
            balances = venue.get_balances()
            try:
                open_orders = venue.fetch_open_orders()
            except Exception as exc:  # noqa: BLE001
                open_orders, error = None, _open_orders_error(exc)
        by_asset: dict[str, Balance] = {}
        for balance in balances:
            seen = by_asset.get(balance.asset)
            by_asset[balance.asset] = (
                balance
                if seen is None
                else Balance(balance.asset, seen.free + balance.free, seen.locked + balance.locked)
            )
        return cls(quote_asset.upper(), now, by_asset, open_orders, error)

    # ------------------------------------------------------------------ reading

    def total(self, asset: str) -> Decimal:
        """Free plus locked of ``asset`` (0 when not held)."""
        with self._lock:
            balance = self.balances.get(asset)
            return balance.total if balance is not None else ZERO

    def free(self, asset: str) -> Decimal:
        """What of ``asset`` can be sold now (0 when not held)."""
        with self._lock:
            balance = self.balances.get(asset)
            return balance.free if balance is not None else ZERO

    def totals(self) -> dict[str, Decimal]:
        """Free plus locked of every asset held."""
        with self._lock:
            return {asset: b.total for asset, b in self.balances.items()}

    def held_symbols(self) -> list[str]:
        """``ASSET/QUOTE`` of every non-quote asset with a positive balance."""
        return [
            f"{asset}/{self.quote_asset}"
            for asset, total in sorted(self.totals().items())
            if asset != self.quote_asset and total > 0
        ]

    def valuation_parts(self, marks: Mapping[str, Decimal]) -> tuple[Decimal, tuple[Position, ...]]:
        """``(cash, positions)``: the quote balance, and each held asset at ``marks`` (an asset
        without a mark is left out: it cannot be valued or sold here)."""
        cash = ZERO
        positions: list[Position] = []
        for asset, total in sorted(self.totals().items()):
            if asset == self.quote_asset:
                cash += total
                continue
            symbol = f"{asset}/{self.quote_asset}"
            mark = marks.get(symbol)
            if mark is None or total <= 0:
                continue
            positions.append(Position(symbol, total, mark, mark_price=mark))
        return cash, tuple(positions)

    def remember_marks(self, asked: Iterable[str], marks: Mapping[str, Decimal]) -> None:
        """Keep the venue's own prices read this cycle; a symbol asked for is never asked for
        again in this cycle, whether the venue quoted it or not."""
        with self._lock:
            self.asked_marks.update(asked)
            self.venue_marks.update(marks)

    def missing_marks(self, priced: Iterable[str]) -> list[str]:
        """Held symbols priced neither by ``priced`` nor by the venue (asked this cycle)."""
        known = set(priced)
        with self._lock:
            known |= self.asked_marks
        return [s for s in self.held_symbols() if s not in known]

    def valuation(
        self,
        venue: Broker,
        book: str,
        candle_marks: Mapping[str, Decimal],
        candles_price_the_venue: bool,
    ) -> BookValuation:
        """The account marked to market: the quote balance as cash, other assets at the
        candles' closes when those are the venue's own prices, otherwise (and for an asset no
        candle prices) at the venue's own last prices — read at most once per cycle, all in
        one request. A real account is never valued at synthetic or CSV prices."""
        candles = dict(candle_marks) if candles_price_the_venue else {}
        missing = self.missing_marks(candles)
        if missing:
            self.remember_marks(missing, venue.last_prices(missing))
        with self._lock:
            marks = {**self.venue_marks, **candles}
        cash, positions = self.valuation_parts(marks)
        return BookValuation(book, cash, positions)

    # ------------------------------------------------------------------ this cycle's fills

    def apply_fill(self, fill: OrderFill) -> None:
        """Move the balances as the venue did for ``fill``: the base asset in or out, its cost
        in the quote asset, and each fee out of the asset it was charged in."""
        if fill.quantity <= 0:
            return
        base, _, quote = fill.symbol.partition("/")
        sign = Decimal(1) if fill.side is OrderSide.BUY else Decimal(-1)
        with self._lock:
            if fill.trades:
                for trade in fill.trades:
                    self._move(base, sign * trade.quantity)
                    self._move(quote, -sign * trade.quantity * trade.price)
                    self._move(trade.fee_currency or quote, -trade.fee)
            else:
                self._move(base, sign * fill.quantity)
                self._move(quote, -sign * fill.quantity * (fill.price or ZERO))
                self._move(fill.fee_currency or quote, -fill.fee)
            self.fills_applied += 1

    def _move(self, asset: str, amount: Decimal) -> None:
        if amount == 0:
            return
        balance = self.balances.get(asset) or Balance(asset, ZERO)
        self.balances[asset] = Balance(asset, balance.free + amount, balance.locked)


def _open_orders_error(exc: BaseException) -> str:
    from otonom_trader.broker.errors import TemporaryBrokerError

    if isinstance(exc, (TemporaryBrokerError, NotImplementedError)):
        return str(exc)
    raise exc
