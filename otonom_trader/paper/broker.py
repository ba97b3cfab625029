"""The paper trader: a Broker whose account is a book in the database.

Fills at a modelled price — the last close ± ``slippage_bps`` (worse for the taker) — charges
the taker fee in the quote asset, applies the market's lot step, tick size and minimum notional,
and writes every order, fill and position change in one transaction. Repeated runs continue the
same book because the book lives in the database, not in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from otonom_trader.broker.base import Broker
from otonom_trader.broker.errors import (
    BrokerError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
)
from otonom_trader.broker.types import (
    Balance,
    OrderFill,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Trade,
    to_decimal,
)
from otonom_trader.execution.journal import (
    already_sent,
    journal_order,
    random_client_order_id,
    record_failure,
    record_fill,
)
from otonom_trader.market.rules import MarketRules, rules_for
from otonom_trader.market.symbols import split, to_unified
from otonom_trader.paper.config import PaperConfig
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.models import BookAccount, BookPosition, OrderRecord
from otonom_trader.portfolio.ledger import apply_fill, ensure_account, value_book

BPS = Decimal(10_000)


def model_fill(
    rules: MarketRules,
    side: OrderSide,
    requested: Decimal,
    mark: Decimal,
    *,
    held_quantity: Decimal,
    cash: Decimal,
    cfg: PaperConfig,
    quote_asset: str,
) -> tuple[Decimal, Decimal, Decimal]:
    """The paper fill model: ``(quantity, price, fee)`` of a market order at ``mark``, or the
    refusal (``BrokerError``). Pure: the paper book and the backtest's in-memory book both call
    it with what the book holds (``held_quantity`` of the base, ``cash`` in the quote asset).

    The price is the mark moved ``slippage_bps`` against the taker and rounded to the tick
    against the taker; the quantity is rounded to the lot step and, for a sell, capped at what
    is held (a spot book cannot go short); the taker fee is charged in the quote asset.
    """
    slip = to_decimal(cfg.slippage_bps) / BPS
    raw_price = mark * (1 + slip) if side is OrderSide.BUY else mark * (1 - slip)
    # Round against the taker: a buy's price up, a sell's down.
    price = rules.round_price(raw_price, OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY)
    fee_rate = to_decimal(cfg.taker_fee_bps) / BPS
    quantity = rules.round_quantity(requested)
    if side is OrderSide.SELL:
        if held_quantity <= 0:
            raise InsufficientFundsError(f"paper book holds no {rules.base} to sell")
        # A spot book cannot go short: selling more than held sells what is held.
        quantity = min(quantity, rules.round_quantity(held_quantity))
    rules.check(quantity, price)
    if side is OrderSide.BUY and quantity * price * (1 + fee_rate) > cash:
        raise InsufficientFundsError(
            f"paper book has {cash:.2f} {quote_asset}, order needs "
            f"{quantity * price * (1 + fee_rate):.2f}"
        )
    fee = (quantity * price * fee_rate).quantize(Decimal("0.00000001"))
    return quantity, price, fee


class PaperBroker(Broker):
    """Paper book ``book`` in ``db``. Call ``set_price`` with the latest close before trading."""

    is_production = False
    reports_orders_instantly = True  # the book is the venue: a fill and its order commit together

    def __init__(
        self,
        db: Database,
        book: str = "paper",
        cfg: PaperConfig | None = None,
        quote_asset: str = "USDT",
        *,
        mode: str = "paper",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self.book = book
        self.cfg = cfg or PaperConfig()
        self.quote_asset = quote_asset
        self.mode = mode
        self.name = f"paper book '{book}'"
        self._clock = clock or (lambda: datetime.now(UTC))
        self._marks: dict[str, Decimal] = {}
        with db.session() as session:
            ensure_account(session, book, to_decimal(self.cfg.initial_cash), quote_asset)

    def set_price(self, symbol: str, price: Decimal) -> None:
        """The price the next fill is modelled on (normally the last closed candle's close)."""
        self._marks[to_unified(symbol)] = to_decimal(price)

    def place_order(self, req: OrderRequest) -> OrderFill:
        """Fill a market order now at the modelled price, or refuse it.

        The order is journaled first; a refusal (no price, lot/notional rules, cash) is written
        on that row before the error is raised, so every order attempt stays on record. Placing
        a client order id that already filled returns that fill again: it never fills twice.
        """
        symbol = to_unified(req.symbol)
        cid = req.client_order_id or random_client_order_id()
        now = self._clock()
        error: BrokerError | None = None
        with self.db.session() as session:
            order = journal_order(
                session,
                OrderRequest(
                    symbol, req.side, req.quantity, req.order_type, req.price, cid, req.reduce_only
                ),
                book=self.book,
                mode=self.mode,
                run_id=None,
                signal_price=self._marks.get(symbol),
                now=now,
            )
            if already_sent(order):
                return self._known_outcome(order)
            try:
                fill = self._fill(session, order, req, symbol, cid, now)
            except BrokerError as exc:
                record_failure(order, OrderStatus.REJECTED, str(exc), now)
                error = exc
        if error is not None:
            raise error
        return fill

    def _fill(
        self,
        session: Session,
        order: OrderRecord,
        req: OrderRequest,
        symbol: str,
        cid: str,
        now: datetime,
    ) -> OrderFill:
        mark = self._marks.get(symbol)
        if mark is None:
            raise InvalidOrderError(f"paper book has no price for {symbol}; set_price first")
        if req.order_type is OrderType.LIMIT:
            raise InvalidOrderError("the paper book models market orders only")
        account = session.get(BookAccount, self.book)
        assert account is not None  # created in __init__
        # Only this symbol's row: a sell must not read the whole book (100 symbols, 100 sells).
        selling = req.side is OrderSide.SELL
        held = session.get(BookPosition, (self.book, symbol)) if selling else None
        quantity, price, fee = model_fill(
            rules_for(symbol),
            req.side,
            req.quantity,
            mark,
            held_quantity=max(held.quantity, Decimal(0)) if held is not None else Decimal(0),
            cash=account.cash,
            cfg=self.cfg,
            quote_asset=self.quote_asset,
        )
        fill = OrderFill(
            symbol=symbol,
            side=req.side,
            quantity=quantity,
            price=price,
            requested_quantity=req.quantity,
            status=OrderStatus.FILLED if quantity == req.quantity else OrderStatus.PARTIALLY_FILLED,
            order_id=f"paper-{order.id}",
            client_order_id=cid,
            fee=fee,
            fee_currency=self.quote_asset,
            timestamp=now,
            latency_ms=0.0,
        )
        apply_fill(session, self.book, order, fill, now)
        record_fill(order, fill, now)
        return fill

    def _known_outcome(self, order: OrderRecord) -> OrderFill:
        """The recorded result of an order placed before with the same client order id."""
        status = OrderStatus(order.status)
        if status not in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
            raise InvalidOrderError(
                f"paper order {order.client_order_id} was already {status.value}"
                + (f": {order.error}" if order.error else "")
            )
        return OrderFill(
            symbol=order.symbol,
            side=OrderSide(order.side),
            quantity=order.filled_qty,
            price=order.avg_fill_price,
            requested_quantity=order.requested_qty,
            status=status,
            order_id=order.exchange_order_id or f"paper-{order.id}",
            client_order_id=order.client_order_id,
            fee=order.fee,
            fee_currency=order.fee_currency,
            timestamp=order.updated_at,
            latency_ms=0.0,
        )

    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderFill]:
        """None: a paper order fills or is refused at once, it never rests."""
        return []

    def fetch_trades_since(self, symbol: str, after_trade_id: str | None) -> list[Trade]:
        """None beyond the book's own: nothing trades on the paper venue but this book."""
        return []

    def last_price(self, symbol: str) -> Decimal | None:
        """The mark the next fill is modelled on."""
        return self._marks.get(to_unified(symbol))

    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderFill | None:
        """The paper order's outcome, or ``None`` when it never filled or was refused (a paper
        order and its fill are written in one transaction, so no fill means never executed)."""
        with self.db.session() as session:
            order = session.scalars(
                select(OrderRecord).where(
                    OrderRecord.book == self.book, OrderRecord.client_order_id == client_order_id
                )
            ).first()
            if order is None or not order.fills:
                return None
            return self._known_outcome(order)

    def cancel_order(self, symbol: str, order_id: str) -> None:
        # Paper orders fill at once; nothing ever rests, so any cancel targets an unknown order.
        with self.db.session() as session:
            found = session.scalars(
                select(OrderRecord).where(
                    OrderRecord.book == self.book, OrderRecord.client_order_id == order_id
                )
            ).first()
        state = f"already {found.status}" if found is not None else "unknown"
        raise OrderNotFoundError(f"paper order {order_id} on {symbol}: {state}, nothing to cancel")

    def get_open_positions(self) -> list[Position]:
        with self.db.session() as session:
            return list(value_book(session, self.book, self._marks).positions)

    def get_balances(self) -> list[Balance]:
        with self.db.session() as session:
            valuation = value_book(session, self.book, self._marks)
        balances = [Balance(self.quote_asset, valuation.cash)]
        balances += [Balance(split(p.symbol)[0], p.quantity) for p in valuation.positions]
        return balances

    def equity(self) -> Decimal:
        """Cash plus positions at the latest prices."""
        with self.db.session() as session:
            return value_book(session, self.book, self._marks).equity

    def ping(self) -> bool:
        return True
