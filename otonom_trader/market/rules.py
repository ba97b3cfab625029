"""Exchange trading rules of one market: lot step, tick size, minimum notional.

Every book applies the same rules before an order counts: quantities are rounded *down* to the
lot step (never buy more than intended), prices to the tick (down for buys, up for sells, so a
rounded limit never crosses further than asked), and an order worth less than the minimum
notional is refused before it is sent. Rules come from Binance's exchangeInfo filters
(``PRICE_FILTER``, ``LOT_SIZE``, ``NOTIONAL``/``MIN_NOTIONAL``) or from a ccxt market dict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cache
from importlib import resources
from typing import Any

from otonom_trader.broker.errors import BelowMinimumNotionalError, InvalidOrderError
from otonom_trader.broker.types import OrderSide, to_decimal
from otonom_trader.market.symbols import to_exchange_id, to_unified


@dataclass(frozen=True)
class MarketRules:
    """Precision and limits of one spot market (``symbol`` in unified form, ``BTC/USDT``)."""

    symbol: str
    base: str
    quote: str
    lot_step: Decimal
    tick_size: Decimal
    min_qty: Decimal
    max_qty: Decimal | None
    min_notional: Decimal
    min_price: Decimal = Decimal(0)
    max_price: Decimal | None = None
    market_max_qty: Decimal | None = None  # Binance MARKET_LOT_SIZE: a market order's maximum
    max_notional: Decimal | None = None  # NOTIONAL maxNotional (where the venue applies it)
    # PERCENT_PRICE_BY_SIDE: a limit price's band around the market price, (down, up) multipliers
    bid_band: tuple[Decimal, Decimal] | None = None
    ask_band: tuple[Decimal, Decimal] | None = None

    def round_quantity(self, quantity: Decimal) -> Decimal:
        """Round down to a multiple of the lot step."""
        return _round_to_step(quantity, self.lot_step, ROUND_FLOOR)

    def round_price(self, price: Decimal, side: OrderSide) -> Decimal:
        """Round to the tick: down for buys, up for sells (never a worse limit than asked)."""
        mode = ROUND_FLOOR if side is OrderSide.BUY else ROUND_CEILING
        return _round_to_step(price, self.tick_size, mode)

    def worst_buy_price(self, mark: Decimal, slippage_rate: Decimal) -> Decimal:
        """The highest price a market buy at ``mark`` is modelled to fill at: the mark plus
        slippage, rounded *up* to the tick (against the taker)."""
        return _round_to_step(mark * (1 + slippage_rate), self.tick_size, ROUND_CEILING)

    def affordable_quantity(
        self, cash: Decimal, mark: Decimal, fee_rate: Decimal, slippage_rate: Decimal
    ) -> Decimal:
        """The most lots a market buy can take so that quantity × worst fill price × (1 + fee)
        stays within ``cash`` — after tick rounding, slippage and fees, on this market."""
        if cash <= 0 or mark <= 0:
            return Decimal(0)
        unit_cost = self.worst_buy_price(mark, slippage_rate) * (1 + fee_rate)
        quantity = self.round_quantity(cash / unit_cost)
        while quantity > 0 and quantity * unit_cost > cash:  # the division's own rounding
            quantity -= self.lot_step
        return max(quantity, Decimal(0))

    def check(
        self,
        quantity: Decimal,
        price: Decimal,
        *,
        market: bool = True,
        limit_price: Decimal | None = None,
        side: OrderSide | None = None,
        market_price: Decimal | None = None,
    ) -> None:
        """Refuse an order that breaks the market's rules, naming the rule; ``price`` is the
        expected fill (a market order's reference price, a limit order's limit).

        Checked: the lot step and quantity limits (LOT_SIZE), a market order's maximum
        (MARKET_LOT_SIZE), the order value's minimum and maximum (NOTIONAL), and a limit
        price's tick and range (PRICE_FILTER) and its band around ``market_price``
        (PERCENT_PRICE_BY_SIDE, for the order's ``side``).
        """
        if quantity <= 0 or quantity < self.min_qty:
            raise InvalidOrderError(
                f"{self.symbol}: LOT_SIZE: quantity {quantity} is below the minimum "
                f"{self.min_qty} (lot step {self.lot_step})"
            )
        if self.lot_step > 0 and quantity % self.lot_step != 0:
            raise InvalidOrderError(
                f"{self.symbol}: LOT_SIZE: quantity {quantity} is not a multiple of the lot step "
                f"{self.lot_step}"
            )
        if self.max_qty is not None and quantity > self.max_qty:
            raise InvalidOrderError(
                f"{self.symbol}: LOT_SIZE: quantity {quantity} is above the maximum {self.max_qty}"
            )
        if market and self.market_max_qty is not None and quantity > self.market_max_qty:
            raise InvalidOrderError(
                f"{self.symbol}: MARKET_LOT_SIZE: a market order of {quantity} is above the "
                f"maximum {self.market_max_qty}"
            )
        if limit_price is not None:
            if self.tick_size > 0 and limit_price % self.tick_size != 0:
                raise InvalidOrderError(
                    f"{self.symbol}: PRICE_FILTER: price {limit_price} is not a multiple of the "
                    f"tick {self.tick_size}"
                )
            if limit_price < self.min_price or (
                self.max_price is not None and limit_price > self.max_price
            ):
                raise InvalidOrderError(
                    f"{self.symbol}: PRICE_FILTER: price {limit_price} is outside "
                    f"[{self.min_price}, {self.max_price}]"
                )
            band = self.bid_band if side is OrderSide.BUY else self.ask_band
            if band is not None and side is not None and market_price:
                low, high = market_price * band[0], market_price * band[1]
                if not low <= limit_price <= high:
                    raise InvalidOrderError(
                        f"{self.symbol}: PERCENT_PRICE_BY_SIDE: a {side.value} at {limit_price} "
                        f"is outside [{low.normalize():f}, {high.normalize():f}] around the "
                        f"market price {market_price}"
                    )
        notional = quantity * price
        if notional < self.min_notional:
            raise BelowMinimumNotionalError(
                f"{self.symbol}: NOTIONAL: order value {notional.normalize():f} {self.quote} is "
                f"below the minimum notional {self.min_notional.normalize():f} {self.quote}"
            )
        if self.max_notional is not None and not market and notional > self.max_notional:
            raise InvalidOrderError(
                f"{self.symbol}: NOTIONAL: order value {notional.normalize():f} {self.quote} is "
                f"above the maximum {self.max_notional.normalize():f} {self.quote}"
            )

    @classmethod
    def from_binance_symbol(cls, info: dict[str, Any]) -> MarketRules:
        """Build from one ``symbols[]`` entry of Binance's ``GET /api/v3/exchangeInfo``."""
        filters = {f["filterType"]: f for f in info.get("filters", [])}
        price_filter = filters.get("PRICE_FILTER", {})
        lot = filters.get("LOT_SIZE", {})
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {}
        market_lot = filters.get("MARKET_LOT_SIZE", {})
        bid_band, ask_band = _percent_price_bands(filters)
        max_qty = _dec_or_none(lot.get("maxQty"))
        max_price = _dec_or_none(price_filter.get("maxPrice"))
        market_max = _dec_or_none(market_lot.get("maxQty"))
        max_notional = _dec_or_none(notional.get("maxNotional"))
        return cls(
            symbol=f"{info['baseAsset']}/{info['quoteAsset']}",
            base=info["baseAsset"],
            quote=info["quoteAsset"],
            lot_step=to_decimal(lot.get("stepSize", "0.00000001")).normalize(),
            tick_size=to_decimal(price_filter.get("tickSize", "0.00000001")).normalize(),
            min_qty=to_decimal(lot.get("minQty", "0")).normalize(),
            max_qty=max_qty if max_qty else None,
            min_notional=to_decimal(notional.get("minNotional", "0")).normalize(),
            min_price=to_decimal(price_filter.get("minPrice", "0")).normalize(),
            max_price=max_price if max_price else None,
            market_max_qty=market_max if market_max else None,
            max_notional=max_notional if max_notional else None,
            bid_band=bid_band,
            ask_band=ask_band,
        )

    @classmethod
    def from_ccxt_market(cls, market: dict[str, Any]) -> MarketRules:
        """Build from a ccxt unified market (``exchange.markets[symbol]``).

        ccxt 4.5 reports ``precision`` as tick sizes (e.g. ``amount: 1e-05``), the
        ``TICK_SIZE`` precision mode every exchange used here has.
        """
        precision = market.get("precision", {})
        limits = market.get("limits", {})
        amount_limits = limits.get("amount") or {}
        cost_limits = limits.get("cost") or {}
        price_limits = limits.get("price") or {}
        max_qty = amount_limits.get("max")
        max_price = price_limits.get("max")
        market_max = (limits.get("market") or {}).get("max")
        max_notional = cost_limits.get("max")
        raw_filters = (market.get("info") or {}).get("filters") or []
        bid_band, ask_band = _percent_price_bands(
            {f.get("filterType"): f for f in raw_filters if isinstance(f, dict)}
        )
        return cls(
            symbol=market["symbol"],
            base=market["base"],
            quote=market["quote"],
            lot_step=to_decimal(precision.get("amount") or "0.00000001").normalize(),
            tick_size=to_decimal(precision.get("price") or "0.00000001").normalize(),
            min_qty=to_decimal(amount_limits.get("min") or 0).normalize(),
            max_qty=to_decimal(max_qty) if max_qty else None,
            min_notional=to_decimal(cost_limits.get("min") or 0).normalize(),
            min_price=to_decimal(price_limits.get("min") or 0).normalize(),
            max_price=to_decimal(max_price) if max_price else None,
            market_max_qty=to_decimal(market_max) if market_max else None,
            max_notional=to_decimal(max_notional) if max_notional else None,
            bid_band=bid_band,
            ask_band=ask_band,
        )


def _percent_price_bands(
    filters: dict[Any, dict[str, Any]],
) -> tuple[tuple[Decimal, Decimal] | None, tuple[Decimal, Decimal] | None]:
    """Binance's PERCENT_PRICE_BY_SIDE as (down, up) multipliers for bids and asks."""
    band = filters.get("PERCENT_PRICE_BY_SIDE")
    if not band:
        return None, None
    try:
        bid = (to_decimal(band["bidMultiplierDown"]), to_decimal(band["bidMultiplierUp"]))
        ask = (to_decimal(band["askMultiplierDown"]), to_decimal(band["askMultiplierUp"]))
    except (KeyError, ValueError, TypeError):
        return None, None
    return bid, ask


def _round_to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= 0:
        return value
    units = (value / step).to_integral_value(rounding=rounding)
    return (units * step).quantize(step)


def _dec_or_none(value: Any) -> Decimal | None:
    return None if value in (None, "") else to_decimal(value)


@cache
def binance_spot_exchange_info() -> dict[str, Any]:
    """The shipped Binance spot exchangeInfo entries (real market definitions, from ccxt's
    test fixtures) used by the simulated exchange, the paper book and the local exchange."""
    text = (
        resources.files("otonom_trader.market")
        .joinpath("data/binance_spot_exchange_info.json")
        .read_text()
    )
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def default_market_rules() -> dict[str, MarketRules]:
    """Rules of the shipped spot markets, keyed by unified symbol (``BTC/USDT``)."""
    rules = (MarketRules.from_binance_symbol(s) for s in binance_spot_exchange_info()["symbols"])
    return {r.symbol: r for r in rules}


#: Markets of a venue's own list loaded in this process that the shipped list does not know.
_VENUE_RULES: dict[str, MarketRules] = {}


def register_venue_rules(rules: Iterable[MarketRules]) -> int:
    """Add the rules of markets a venue listed (``venue_markets.register_venue_markets``); the
    shipped definitions keep precedence. Returns how many were new."""
    shipped = default_market_rules()
    added = 0
    for rule in rules:
        if rule.symbol not in shipped and rule.symbol not in _VENUE_RULES:
            _VENUE_RULES[rule.symbol] = rule
            added += 1
    return added


def known_market_rules() -> dict[str, MarketRules]:
    """The shipped markets and every venue market loaded in this process."""
    return {**_VENUE_RULES, **default_market_rules()}


def rules_for(symbol: str) -> MarketRules:
    """Rules of a shipped market, or of a venue's market loaded in this process; ``BTCUSDT``
    and ``BTC/USDT`` both work."""
    unified = to_unified(symbol)
    try:
        return default_market_rules().get(unified) or _VENUE_RULES[unified]
    except KeyError:
        known = ", ".join(sorted(default_market_rules()))
        raise InvalidOrderError(
            f"unknown market {symbol!r} ({to_exchange_id(unified)}); known: {known}"
        ) from None
