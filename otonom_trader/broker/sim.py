"""The simulated exchange (``broker=sim``): a venue of its own, with its own account and fill model.

It is *not* the paper book with a flag: it holds balances per asset like an exchange, and fills
market orders with a model of what real venues do to an order —

* latency: each order reports a seeded round-trip time (mean ± jitter, never below 1 ms);
* slippage that grows with size: ``slippage_bps_base + slippage_bps_per_10k_quote × notional/10k``;
* partial fills: with ``partial_fill_probability`` only a part (≥ ``partial_fill_min_ratio``) fills,
  the rest is cancelled (immediate-or-cancel);
* rejections: with ``reject_probability`` the order is refused;
* the real Binance lot step, tick size and minimum notional of each market;
* limit orders that rest until ``set_price`` crosses them.

Randomness is drawn from a generator seeded by ``(seed, client_order_id)``, so the same order
always meets the same fate, whatever else ran before it. With ``state_path`` the account survives
restarts, as a real exchange account would: it is kept in a small SQLite database beside that
name (``broker/sim_store.py``), where an order writes only the rows it changes. An account file
of earlier versions (the JSON at ``state_path``) is carried over by the first write and kept
as ``<name>.json.imported``.
"""

from __future__ import annotations

import functools
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from otonom_trader.broker.base import Broker
from otonom_trader.broker.config import SimExchangeConfig
from otonom_trader.broker.errors import (
    ExchangeUnavailableError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
)
from otonom_trader.broker.sim_store import SimAccountStore, SimStoreError, store_path
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
from otonom_trader.config.errors import ConfigError
from otonom_trader.execution.journal import random_client_order_id
from otonom_trader.market.rules import rules_for
from otonom_trader.market.symbols import split, to_unified

BPS = Decimal(10_000)
TEN_K = Decimal(10_000)
T = TypeVar("T")


def _serialised(method: Callable[..., T]) -> Callable[..., T]:
    """One call at a time per exchange: orders may be sent from several threads at once, and
    an order reads and moves balances as one step, as a matching engine would."""

    @functools.wraps(method)
    def locked(self: SimulatedExchange, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


@dataclass
class _RestingOrder:
    order_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    reserved: Decimal  # held back while resting: quote (cost + maker fee) for buys, base for sells


@dataclass
class _Account:
    balances: dict[str, Decimal] = field(default_factory=dict)
    resting: dict[str, _RestingOrder] = field(default_factory=dict)
    # client id → result, of the orders changed since the last save (the rest are in the store)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1


class SimulatedExchange(Broker):
    """An in-process exchange with a seeded fill model. See the module docstring."""

    is_production = False
    reports_orders_instantly = True  # in-process: an order it does not know was never placed

    def __init__(
        self,
        cfg: SimExchangeConfig | None = None,
        quote_asset: str = "USDT",
        *,
        state_path: str | Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.cfg = cfg or SimExchangeConfig()
        self._clock = clock or (lambda: datetime.now(UTC))
        self.quote_asset = quote_asset
        self.name = "sim (simulated exchange)"
        self.state_path = Path(state_path) if state_path else None
        self._prices: dict[str, Decimal] = {}
        self._lock = threading.RLock()
        self._store = SimAccountStore(store_path(self.state_path) if self.state_path else None)
        self._legacy_to_retire: Path | None = None
        self._account = self._load() or _Account(
            balances={quote_asset: to_decimal(self.cfg.initial_cash)}
        )

    # -- price feed -------------------------------------------------------------------------

    @_serialised
    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move the exchange's price; resting limit orders that are crossed fill now (only
        then is anything written)."""
        unified = to_unified(symbol)
        self._prices[unified] = to_decimal(price)
        filled = False
        for order in list(self._account.resting.values()):
            if order.symbol != unified:
                continue
            crossed = (order.side is OrderSide.BUY and self._prices[unified] <= order.price) or (
                order.side is OrderSide.SELL and self._prices[unified] >= order.price
            )
            if crossed:
                del self._account.resting[order.order_id]
                fee = self._settle(
                    order.symbol, order.side, order.quantity, order.price, reserved=order.reserved
                )
                self._update_result(
                    order.client_order_id,
                    status=OrderStatus.FILLED.value,
                    quantity=str(order.quantity),
                    price=str(order.price),
                    fee=str(fee),
                )
                filled = True
        if filled:
            self._save()

    # -- Broker -----------------------------------------------------------------------------

    @_serialised
    def place_order(self, req: OrderRequest) -> OrderFill:
        cid = req.client_order_id or random_client_order_id()
        known = self._result(cid)
        if known is not None:
            # The exchange already has this client id: report the order it knows instead of
            # executing it again (what a lookup after an ambiguous failure would find).
            return self._fill_from_result(known)
        symbol = to_unified(req.symbol)
        rules = rules_for(symbol)
        price = self._prices.get(symbol)
        if price is None:
            raise InvalidOrderError(f"sim exchange has no price for {symbol}")
        rng = random.Random(f"{self.cfg.seed}:{cid}")
        latency = max(1.0, rng.gauss(self.cfg.latency_ms_mean, self.cfg.latency_ms_jitter))
        roll = rng.random()
        if roll < self.cfg.reject_probability:
            reason = rng.choice(
                [
                    (ExchangeUnavailableError, "exchange busy, order not accepted (simulated)"),
                    (
                        InvalidOrderError,
                        "order would immediately trigger price protection (simulated)",
                    ),
                ]
            )
            raise reason[0](f"sim: {reason[1]}")
        quantity = rules.round_quantity(req.quantity)
        limit: Decimal | None = None
        if req.order_type is OrderType.LIMIT:
            assert req.price is not None  # OrderRequest guarantees it
            limit = rules.round_price(req.price, req.side)
            rules.check(quantity, limit)
            crosses = (req.side is OrderSide.BUY and price <= limit) or (
                req.side is OrderSide.SELL and price >= limit
            )
            if not crosses:
                return self._rest(cid, symbol, req.side, quantity, limit, req.quantity, latency)
        # Market impact grows with the order's size (quote notional).
        slip_bps = to_decimal(self.cfg.slippage_bps_base) + to_decimal(
            self.cfg.slippage_bps_per_10k_quote
        ) * (quantity * price / TEN_K)
        slip = slip_bps / BPS
        raw = price * (1 + slip) if req.side is OrderSide.BUY else price * (1 - slip)
        # Round against the taker: a buy's price up, a sell's down.
        price = rules.round_price(
            raw, OrderSide.SELL if req.side is OrderSide.BUY else OrderSide.BUY
        )
        if limit is not None:
            # A marketable limit order takes the market price, but never beyond its limit.
            price = min(price, limit) if req.side is OrderSide.BUY else max(price, limit)
        # The whole order must meet the market's rules and be covered by the account, as on a
        # real exchange; how much of it then fills is the matching engine's business.
        rules.check(quantity, price)
        base, quote = split(symbol)
        if req.side is OrderSide.BUY:
            needed = quantity * price * (1 + to_decimal(self.cfg.taker_fee_bps) / BPS)
            if self._balance(quote) < needed:
                raise InsufficientFundsError(
                    f"sim: account has {self._balance(quote):.2f} {quote}, order needs {needed:.2f}"
                )
        elif self._balance(base) < quantity:
            raise InsufficientFundsError(
                f"sim: account has {self._balance(base)} {base}, order sells {quantity}"
            )
        if rng.random() < self.cfg.partial_fill_probability:
            # Immediate-or-cancel: part fills (at least one lot), the rest is cancelled.
            ratio = to_decimal(round(rng.uniform(self.cfg.partial_fill_min_ratio, 1.0), 6))
            partial = max(rules.round_quantity(quantity * ratio), rules.min_qty, rules.lot_step)
            quantity = min(partial, quantity)
        fee = self._settle(symbol, req.side, quantity, price)
        status = OrderStatus.FILLED if quantity >= req.quantity else OrderStatus.PARTIALLY_FILLED
        result = self._record(
            cid, symbol, req.side, quantity, price, req.quantity, status, fee, latency
        )
        self._save()
        return self._fill_from_result(result)

    @_serialised
    def fetch_open_orders(self, symbol: str | None = None) -> list[OrderFill]:
        """Resting limit orders, as the venue reports them."""
        wanted = to_unified(symbol) if symbol else None
        return [
            self._fill_from_result(self._known_result(o.client_order_id))
            for o in self._account.resting.values()
            if wanted is None or o.symbol == wanted
        ]

    def fetch_trades_since(self, symbol: str, after_trade_id: str | None) -> list[Trade]:
        """None from outside: only this process trades on the in-process exchange."""
        return []

    def last_price(self, symbol: str) -> Decimal | None:
        """The exchange's current price."""
        return self._prices.get(to_unified(symbol))

    @_serialised
    def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderFill | None:
        """The order this exchange knows under ``client_order_id``, or ``None``."""
        result = self._result(client_order_id)
        return self._fill_from_result(result) if result is not None else None

    @_serialised
    def cancel_order(self, symbol: str, order_id: str) -> None:
        match = self._account.resting.pop(order_id, None)
        if match is None:
            match = next(
                (o for o in self._account.resting.values() if o.client_order_id == order_id), None
            )
            if match is not None:
                del self._account.resting[match.order_id]
        if match is None:
            raise OrderNotFoundError(f"sim: no open order {order_id} on {to_unified(symbol)}")
        base, quote = split(match.symbol)
        asset = quote if match.side is OrderSide.BUY else base
        self._account.balances[asset] = self._balance(asset) + match.reserved
        self._update_result(match.client_order_id, status=OrderStatus.CANCELLED.value)
        self._save()

    def open_orders(self) -> list[dict[str, Any]]:
        """Resting limit orders (order id, client id, symbol, side, quantity, price)."""
        return [
            {
                "order_id": o.order_id,
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side.value,
                "quantity": o.quantity,
                "price": o.price,
            }
            for o in self._account.resting.values()
        ]

    def get_open_positions(self) -> list[Position]:
        positions = []
        for asset, amount in sorted(self._account.balances.items()):
            if asset == self.quote_asset or amount <= 0:
                continue
            symbol = f"{asset}/{self.quote_asset}"
            mark = self._prices.get(symbol)
            positions.append(Position(symbol, amount, mark or Decimal(0), mark_price=mark))
        return positions

    def get_balances(self) -> list[Balance]:
        locked: dict[str, Decimal] = {}
        for order in self._account.resting.values():
            base, quote = split(order.symbol)
            asset = quote if order.side is OrderSide.BUY else base
            locked[asset] = locked.get(asset, Decimal(0)) + order.reserved
        assets = sorted(set(self._account.balances) | set(locked))
        return [
            Balance(a, self._balance(a), locked.get(a, Decimal(0)))
            for a in assets
            if self._balance(a) + locked.get(a, Decimal(0)) > 0
        ]

    def equity(self) -> Decimal:
        """Quote balance (free + locked) plus base assets at the exchange's prices."""
        total = Decimal(0)
        for balance in self.get_balances():
            if balance.asset == self.quote_asset:
                total += balance.total
            else:
                total += balance.total * self._prices.get(
                    f"{balance.asset}/{self.quote_asset}", Decimal(0)
                )
        return total

    def ping(self) -> bool:
        return True

    @property
    def orders_accepted(self) -> int:
        """How many orders this exchange has accepted, ever (each has a result it reports)."""
        return self._account.next_id - 1

    # -- internals --------------------------------------------------------------------------

    def _result(self, client_order_id: str) -> dict[str, Any] | None:
        """The result of an order: changed in this process and not saved yet, or stored."""
        cached = self._account.results.get(client_order_id)
        if cached is not None:
            return cached
        try:
            return self._store.result(client_order_id)
        except SimStoreError as exc:
            raise self._unreadable(exc) from None

    def _known_result(self, client_order_id: str) -> dict[str, Any]:
        result = self._result(client_order_id)
        if result is None:  # a resting order is always recorded with its result
            raise OrderNotFoundError(f"sim: no record of order {client_order_id}")
        return result

    def _update_result(self, client_order_id: str, **changes: Any) -> None:
        result = dict(self._known_result(client_order_id))
        result.update(changes)
        self._account.results[client_order_id] = result

    def _balance(self, asset: str) -> Decimal:
        return self._account.balances.get(asset, Decimal(0))

    def _settle(
        self,
        symbol: str,
        side: OrderSide,
        qty: Decimal,
        price: Decimal,
        *,
        reserved: Decimal | None = None,
    ) -> Decimal:
        """Move balances for a fill; ``reserved`` is what a resting (maker) order held back."""
        base, quote = split(symbol)
        maker = reserved is not None
        bps = self.cfg.maker_fee_bps if maker else self.cfg.taker_fee_bps
        fee = (qty * price * to_decimal(bps) / BPS).quantize(Decimal("0.00000001"))
        if side is OrderSide.BUY:
            # A resting buy reserved cost + fee; what the fill did not use goes back to free.
            spent = qty * price + fee
            self._account.balances[quote] = self._balance(quote) + (reserved or 0) - spent
            self._account.balances[base] = self._balance(base) + qty
        else:
            self._account.balances[base] = self._balance(base) + (reserved or 0) - qty
            self._account.balances[quote] = self._balance(quote) + qty * price - fee
        return fee

    def _rest(
        self,
        cid: str,
        symbol: str,
        side: OrderSide,
        qty: Decimal,
        limit: Decimal,
        requested: Decimal,
        latency: float,
    ) -> OrderFill:
        base, quote = split(symbol)
        if side is OrderSide.BUY:
            reserved = qty * limit * (1 + to_decimal(self.cfg.maker_fee_bps) / BPS)
            if self._balance(quote) < reserved:
                raise InsufficientFundsError(
                    f"sim: not enough {quote} to rest a buy of {qty} at {limit}"
                )
            self._account.balances[quote] = self._balance(quote) - reserved
        else:
            reserved = qty
            if self._balance(base) < qty:
                raise InsufficientFundsError(f"sim: not enough {base} to rest a sell of {qty}")
            self._account.balances[base] = self._balance(base) - qty
        result = self._record(
            cid, symbol, side, Decimal(0), None, requested, OrderStatus.OPEN, Decimal(0), latency
        )
        self._account.resting[result["order_id"]] = _RestingOrder(
            result["order_id"], cid, symbol, side, qty, limit, reserved
        )
        self._save()
        return self._fill_from_result(result)

    def _record(
        self,
        cid: str,
        symbol: str,
        side: OrderSide,
        qty: Decimal,
        price: Decimal | None,
        requested: Decimal,
        status: OrderStatus,
        fee: Decimal,
        latency: float,
    ) -> dict[str, Any]:
        order_id = f"sim-{self._account.next_id}"
        self._account.next_id += 1
        result = {
            "order_id": order_id,
            "client_order_id": cid,
            "symbol": symbol,
            "side": side.value,
            "quantity": str(qty),
            "price": None if price is None else str(price),
            "requested": str(requested),
            "status": status.value,
            "fee": str(fee),
            "latency_ms": round(latency, 3),
            "timestamp": self._clock().isoformat(),
        }
        self._account.results[cid] = result
        return result

    def _fill_from_result(self, result: dict[str, Any]) -> OrderFill:
        return OrderFill(
            symbol=result["symbol"],
            side=OrderSide(result["side"]),
            quantity=Decimal(result["quantity"]),
            price=None if result["price"] is None else Decimal(result["price"]),
            requested_quantity=Decimal(result["requested"]),
            status=OrderStatus(result["status"]),
            order_id=result["order_id"],
            client_order_id=result["client_order_id"],
            fee=Decimal(result["fee"]),
            fee_currency=self.quote_asset,
            timestamp=datetime.fromisoformat(result["timestamp"]),
            latency_ms=result["latency_ms"],
        )

    def _load(self) -> _Account | None:
        if self.state_path is None:
            return None
        try:
            stored = self._store.load()
        except SimStoreError as exc:
            raise self._unreadable(exc) from None
        if stored is not None:
            return self._parse_state({**stored, "results": {}})
        if not self.state_path.is_file():
            return None
        # An account file of an earlier version: every result is held as "changed" until the
        # first save writes them, with the rest of the account, into the store.
        try:
            account = self._parse_state(json.loads(self.state_path.read_text()))
        except (OSError, ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise ConfigError(
                f"{self.state_path}: unreadable simulated exchange account "
                f"({type(exc).__name__}: {exc}); move the file away to start a fresh account",
                key="broker.sim",
            ) from None
        self._legacy_to_retire = self.state_path
        return account

    def _unreadable(self, exc: SimStoreError) -> ConfigError:
        return ConfigError(
            f"{self._store.path}: unreadable simulated exchange account ({exc}); move the file "
            "away to start a fresh account",
            key="broker.sim",
        )

    @staticmethod
    def _parse_state(data: dict[str, Any]) -> _Account:
        account = _Account(
            balances={k: Decimal(v) for k, v in data["balances"].items()},
            results=data["results"],
            next_id=data["next_id"],
        )
        for o in data["resting"]:
            account.resting[o["order_id"]] = _RestingOrder(
                o["order_id"],
                o["client_order_id"],
                o["symbol"],
                OrderSide(o["side"]),
                Decimal(o["quantity"]),
                Decimal(o["price"]),
                # Files from before reservations were stored held cost (buys) or quantity.
                Decimal(o.get("reserved") or _legacy_reserve(o)),
            )
        return account

    def _save(self) -> None:
        """Write what changed: the (few) balances and resting orders, and the results changed
        since the last save — never the whole history."""
        try:
            self._store.save(
                balances={k: str(v) for k, v in self._account.balances.items()},
                resting=[
                    {
                        "order_id": o.order_id,
                        "client_order_id": o.client_order_id,
                        "symbol": o.symbol,
                        "side": o.side.value,
                        "quantity": str(o.quantity),
                        "price": str(o.price),
                        "reserved": str(o.reserved),
                    }
                    for o in self._account.resting.values()
                ],
                next_id=self._account.next_id,
                results=list(self._account.results.values()),
            )
        except SimStoreError as exc:
            raise self._unreadable(exc) from None
        self._account.results.clear()
        if self._legacy_to_retire is not None:
            # Carried over: keep the old file as a backup, out of the way of the next start.
            self._legacy_to_retire.replace(
                self._legacy_to_retire.with_name(self._legacy_to_retire.name + ".imported")
            )
            self._legacy_to_retire = None


def _legacy_reserve(order: dict[str, Any]) -> Decimal:
    if order["side"] == OrderSide.BUY.value:
        return Decimal(order["quantity"]) * Decimal(order["price"])
    return Decimal(order["quantity"])
