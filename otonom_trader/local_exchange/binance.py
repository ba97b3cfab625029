"""A local Binance spot exchange that ``ccxt.binance`` talks to over real HTTP.

Endpoints (the ones ccxt 4.5 uses for spot): ``GET /api/v3/ping``, ``/time``, ``/exchangeInfo``,
``/ticker/24hr``, ``/ticker/price``, ``/ticker/bookTicker``, ``/klines``; signed
``GET /api/v3/account``, ``POST|GET|DELETE /api/v3/order``, ``GET /api/v3/openOrders`` and
``GET /sapi/v1/account/apiRestrictions``.

Semantics copied from Binance's spot API:

* Signed requests carry ``X-MBX-APIKEY`` and ``signature`` = hex HMAC-SHA256(secret, query
  string + body without the signature). Missing/unknown key → HTTP 401 ``-2014``/``-2015``;
  a missing or wrong signature → 400 ``-1022``; ``timestamp`` older than ``recvWindow``
  (default 5000 ms) or more than 1000 ms ahead → 400 ``-1021``.
* Orders pass ``PRICE_FILTER``, ``LOT_SIZE``, ``MARKET_LOT_SIZE`` and ``NOTIONAL`` of the
  shipped exchangeInfo (``-1013 "Filter failure: …"``), then the balance check (``-2010``).
  ``newClientOrderId`` is unique among *open* orders only (``-2010 "Duplicate order sent."``).
* Market orders fill at once against the price feed (± half the configurable ``spread``);
  limit orders that cross fill at once (taker), others rest with their funds locked until
  :meth:`LocalBinanceExchange.set_price` moves the feed through them (maker, at the limit).
  The fee (``fee_rate``, 0.1 %) is taken in the received asset, as on Binance, or in BNB at
  25 % off when ``pay_fees_in_bnb`` is set and the account holds enough BNB.
* Klines are deterministic candles whose newest (still open) candle closes at the feed price,
  or recorded candles a test serves (:meth:`LocalBinanceExchange.serve_candles`); a range can be
  left out (:meth:`LocalBinanceExchange.omit_candles`: an outage, the history then has a gap).

:attr:`LocalBinanceExchange.orders` holds every accepted order as a :class:`LocalOrder`
dataclass (live objects; their ``status``/``executed_qty`` change as they fill or cancel).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from otonom_trader.broker.request_budget import request_weight
from otonom_trader.local_exchange.account import LocalFill, LocalOrder, SpotAccountExchange
from otonom_trader.local_exchange.faults import FaultKind
from otonom_trader.local_exchange.klines import (
    INTERVAL_MS,
    generate_klines,
    recorded_klines,
    without_ranges,
)
from otonom_trader.local_exchange.server import (
    Clock,
    LocalReply,
    LocalRequest,
    utc_now,
)
from otonom_trader.market.rules import binance_spot_exchange_info

#: Feed prices used for shipped markets the caller gives no price for (round reference values).
DEFAULT_PRICES: dict[str, Decimal] = {
    "BTC/USDT": Decimal("50000"),
    "ETH/USDT": Decimal("3000"),
    "ADA/USDT": Decimal("0.45"),
    "LTC/USDT": Decimal("80"),
    "XRP/USDT": Decimal("0.6"),
    "DOGE/USDT": Decimal("0.12"),
    "TRX/USDT": Decimal("0.11"),
}

_CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_NUMBER_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_EIGHT = Decimal("0.00000001")
_NOT_FOUND_HTML = "<html><body><h2>404 Not found</h2></body></html>"


class BinanceApiError(Exception):
    """An error answer: HTTP ``status`` with body ``{"code": code, "msg": msg}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


@dataclass
class _Market:
    info: dict[str, Any]
    base: str
    quote: str
    filters: dict[str, dict[str, Any]]

    @property
    def tick(self) -> Decimal:
        return Decimal(self.filters.get("PRICE_FILTER", {}).get("tickSize", "0.00000001"))

    @property
    def step(self) -> Decimal:
        return Decimal(self.filters.get("LOT_SIZE", {}).get("stepSize", "0.00000001"))


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(_EIGHT):f}"


def _order_state(order: LocalOrder) -> dict[str, Any]:
    """Price, quantities, status and kind of ``order`` as the order and cancel replies give
    them (in Binance's key order)."""
    return {
        "price": _fmt(order.price),
        "origQty": _fmt(order.orig_qty),
        "executedQty": _fmt(order.executed_qty),
        "origQuoteOrderQty": _fmt(order.orig_quote_order_qty),
        "cummulativeQuoteQty": _fmt(order.cumm_quote_qty),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
    }


class LocalBinanceExchange(SpotAccountExchange):
    """Binance spot over HTTP on 127.0.0.1 (see the module docstring for the semantics).

    ``balances`` are free amounts per asset; ``prices`` (unified symbols, ``BTC/USDT``) override
    :data:`DEFAULT_PRICES`. ``spread`` is relative (``0.001`` = bid/ask 0.05 % either side of
    the feed). ``clock`` gives the server time (aware UTC), used for ``serverTime``, recvWindow
    checks, order times and klines.
    """

    def __init__(
        self,
        api_key: str = "test-key",
        api_secret: str = "test-secret",
        balances: dict[str, Decimal] | None = None,
        prices: dict[str, Decimal] | None = None,
        *,
        fee_rate: Decimal = Decimal("0.001"),
        spread: Decimal = Decimal(0),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(
            api_key, api_secret, balances, fee_rate=fee_rate, host=host, port=port, clock=clock
        )
        self.spread = Decimal(spread)
        #: Binance's "use BNB to pay fees": commissions in BNB at 25 % off, while BNB lasts,
        #: converted at ``bnb_price`` (quote per BNB; the shipped markets have no BNB market).
        self.pay_fees_in_bnb = False
        self.bnb_price: Decimal | None = None
        self._markets: dict[str, _Market] = {}
        for info in binance_spot_exchange_info()["symbols"]:
            filters = {f["filterType"]: f for f in info.get("filters", [])}
            self._markets[info["symbol"]] = _Market(
                info, info["baseAsset"], info["quoteAsset"], filters
            )
        self._by_unified = {f"{m.base}/{m.quote}": sid for sid, m in self._markets.items()}
        self._prices: dict[str, Decimal] = {}
        for symbol, price in {**DEFAULT_PRICES, **(prices or {})}.items():
            self._prices[self._market_id(symbol)] = Decimal(price)
        self._recorded: dict[tuple[str, str], list[_RecordedCandle]] = {}
        self._omitted: dict[str, list[tuple[int, int]]] = {}
        self._next_order_id = 1_000_001
        self._next_trade_id = 500_001

    used_weight_header = "X-MBX-USED-WEIGHT-1M"

    def request_weight(self, request: LocalRequest) -> int:
        """Binance's published weight of the endpoint (the client's budget uses the same
        table)."""
        return request_weight("binance", request.method, request.path, request.params)

    # ============================================================================ test/drill API
    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move the feed of ``symbol`` (``BTC/USDT`` or ``BTCUSDT``); crossed limits fill."""
        sid = self._market_id(symbol)
        with self._lock:
            self._prices[sid] = Decimal(price)
            now = self._now_ms()
            bid, ask = self._bid_ask(sid)
            for order in self.orders:
                if not order.is_open or order.symbol != sid:
                    continue
                if (order.side == "BUY" and ask <= order.price) or (
                    order.side == "SELL" and bid >= order.price
                ):
                    self._fill(order, order.price, maker=True, now=now)

    def list_markets(self, symbols: list[str], *, like: str, price: Decimal) -> None:
        """List more spot markets (``ABC/USDT``), each with the filters of the shipped market
        ``like`` and a feed at ``price``: a venue with as many markets as a test needs (the
        shipped definitions hold seven)."""
        template = self._markets[self._market_id(like)]
        with self._lock:
            for symbol in symbols:
                base, quote = symbol.split("/")
                sid = f"{base}{quote}"
                info = {**json_copy(template.info), "symbol": sid, "baseAsset": base}
                info["quoteAsset"] = quote
                filters = {f["filterType"]: f for f in info.get("filters", [])}
                self._markets[sid] = _Market(info, base, quote, filters)
                self._by_unified[symbol] = sid
                self._prices[sid] = Decimal(price)

    def price(self, symbol: str) -> Decimal:
        """The current feed price of ``symbol``."""
        return self._prices[self._market_id(symbol)]

    def serve_candles(
        self, symbol: str, interval: str, candles: Iterable[tuple[int, Any, Any, Any, Any, Any]]
    ) -> None:
        """Serve recorded candles ``(open_ms, open, high, low, close, volume)`` (real history,
        e.g. the shipped BTC series) for ``symbol`` and ``interval`` instead of generated ones.
        The exchange's clock still decides what exists: nothing opening after it is served."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"serve_candles: unknown interval {interval!r}")
        rows: list[_RecordedCandle] = sorted(
            (int(t), _decimal(o), _decimal(h), _decimal(low), _decimal(c), _decimal(vol))
            for t, o, h, low, c, vol in candles
        )
        with self._lock:
            self._recorded[(self._market_id(symbol), interval)] = rows

    def omit_candles(self, symbol: str, start: datetime, end: datetime) -> None:
        """Leave out every candle of ``symbol`` opening in ``[start, end)``, on every interval:
        an outage, as exchanges have had; paged history then jumps over the range."""
        if end <= start:
            raise ValueError(f"omit_candles: end {end} is not after start {start}")
        span = (int(start.timestamp() * 1000), int(end.timestamp() * 1000))
        with self._lock:
            self._omitted.setdefault(self._market_id(symbol), []).append(span)

    def fault_reply(self, kind: FaultKind) -> LocalReply:
        """Binance's answers for the error-status faults."""
        if kind is FaultKind.HTTP_429:
            return LocalReply(
                429,
                {
                    "code": -1003,
                    "msg": "Too many requests; current limit is 6000 request weight "
                    "per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling "
                    "the API.",
                },
                headers={"Retry-After": "1"},
            )
        if kind is FaultKind.HTTP_418:
            until = self._now_ms() + 120_000
            return LocalReply(
                418,
                {
                    "code": -1003,
                    "msg": f"Way too many requests; IP(127.0.0.1) banned until "
                    f"{until}. Please use WebSocket Streams for live updates to avoid bans.",
                },
                headers={"Retry-After": "120"},
            )
        if kind is FaultKind.CODE_1007:
            return LocalReply(
                503,
                {
                    "code": -1007,
                    "msg": "Timeout waiting for response from backend server. Send "
                    "status unknown; execution status unknown.",
                },
            )
        return self._server_error_page(kind)

    # ============================================================================ dispatch
    def handle(self, request: LocalRequest) -> LocalReply:
        """Route one request to its endpoint; errors become Binance's error bodies."""
        route = (request.method, request.path)
        public = {
            ("GET", "/api/v3/ping"): self._ping,
            ("GET", "/api/v3/time"): self._time,
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
            ("GET", "/api/v3/ticker/24hr"): self._ticker_24hr,
            ("GET", "/api/v3/ticker/price"): self._ticker_price,
            ("GET", "/api/v3/ticker/bookTicker"): self._book_ticker,
            ("GET", "/api/v3/klines"): self._klines,
        }
        signed = {
            ("GET", "/api/v3/account"): self._account,
            ("POST", "/api/v3/order"): self._new_order,
            ("GET", "/api/v3/order"): self._query_order,
            ("DELETE", "/api/v3/order"): self._cancel_order,
            ("GET", "/api/v3/openOrders"): self._open_orders,
            ("GET", "/api/v3/myTrades"): self._my_trades,
            ("GET", "/sapi/v1/account/apiRestrictions"): self._api_restrictions,
        }
        try:
            if route in public:
                return LocalReply(200, public[route](request.params))
            if route in signed:
                self._authenticate(request)
                with self._lock:
                    return LocalReply(200, signed[route](request.params))
        except _NotFound:
            pass
        except BinanceApiError as err:
            return LocalReply(err.status, {"code": err.code, "msg": err.msg})
        return LocalReply(404, _NOT_FOUND_HTML, content_type="text/html")

    # ============================================================================ security
    def _authenticate(self, request: LocalRequest) -> None:
        key = request.headers.get("x-mbx-apikey", "")
        if not key:
            raise BinanceApiError(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key, self._api_key):
            raise BinanceApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signature = request.params.get("signature", "")
        total = _without_signature(request.raw_query)
        if request.body and "json" not in request.headers.get("content-type", ""):
            total += _without_signature(request.body)
        expected = hmac.new(self._api_secret.encode(), total.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature.lower(), expected):
            raise BinanceApiError(400, -1022, "Signature for this request is not valid.")
        timestamp = _int_param(request.params, "timestamp", required=True) or 0
        recv_window = _int_param(request.params, "recvWindow") or 5000
        if recv_window > 60_000:
            raise BinanceApiError(400, -1131, "recvWindow must be less than 60000")
        now = self._now_ms()
        if timestamp > now + 1000:
            raise BinanceApiError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now - timestamp > recv_window:
            raise BinanceApiError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )

    # ============================================================================ public
    def _ping(self, params: dict[str, str]) -> dict[str, Any]:
        return {}

    def _time(self, params: dict[str, str]) -> dict[str, Any]:
        return {"serverTime": self._now_ms()}

    def _exchange_info(self, params: dict[str, str]) -> dict[str, Any]:
        wanted: list[str] | None = None
        if "symbol" in params:
            wanted = [params["symbol"]]
        elif "symbols" in params:
            wanted = [s.strip('" ') for s in params["symbols"].strip("[]").split(",")]
        if wanted is not None:
            for sid in wanted:
                self._market(sid)
        symbols = [m.info for sid, m in self._markets.items() if wanted is None or sid in wanted]
        return {
            "timezone": "UTC",
            "serverTime": self._now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def _ticker_24hr(self, params: dict[str, str]) -> Any:
        if "symbol" in params:
            return self._ticker_for(self._market_id_strict(params["symbol"]))
        return [self._ticker_for(sid) for sid in self._markets if sid in self._prices]

    def _ticker_for(self, sid: str) -> dict[str, Any]:
        now = self._now_ms()
        hourly = self._candles(sid, "1h", limit=25, start_ms=None, end_ms=None)
        day = hourly[-24:]
        open_price = Decimal(day[0][1])
        last = self._feed(sid)
        high = max([Decimal(c[2]) for c in day] + [last])
        low = min([Decimal(c[3]) for c in day] + [last])
        volume = sum((Decimal(c[5]) for c in day), Decimal(0))
        quote_volume = sum((Decimal(c[7]) for c in day), Decimal(0))
        bid, ask = self._bid_ask(sid)
        change = last - open_price
        return {
            "symbol": sid,
            "priceChange": _fmt(change),
            "priceChangePercent": f"{(change / open_price * 100):.3f}",
            "weightedAvgPrice": _fmt(quote_volume / volume if volume else last),
            "prevClosePrice": _fmt(open_price),
            "lastPrice": _fmt(last),
            "lastQty": "0.00000000",
            "bidPrice": _fmt(bid),
            "bidQty": "1.00000000",
            "askPrice": _fmt(ask),
            "askQty": "1.00000000",
            "openPrice": _fmt(open_price),
            "highPrice": _fmt(high),
            "lowPrice": _fmt(low),
            "volume": _fmt(volume),
            "quoteVolume": _fmt(quote_volume),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": sum(int(c[8]) for c in day),
            "count": sum(int(c[8]) for c in day),
        }

    def _ticker_price(self, params: dict[str, str]) -> Any:
        if "symbol" in params:
            sid = self._market_id_strict(params["symbol"])
            return {"symbol": sid, "price": _fmt(self._feed(sid))}
        return [{"symbol": s, "price": _fmt(p)} for s, p in self._prices.items()]

    def _book_ticker(self, params: dict[str, str]) -> Any:
        def entry(sid: str) -> dict[str, Any]:
            bid, ask = self._bid_ask(sid)
            return {
                "symbol": sid,
                "bidPrice": _fmt(bid),
                "bidQty": "1.00000000",
                "askPrice": _fmt(ask),
                "askQty": "1.00000000",
            }

        if "symbol" in params:
            return entry(self._market_id_strict(params["symbol"]))
        return [entry(sid) for sid in self._prices]

    def _klines(self, params: dict[str, str]) -> list[list[Any]]:
        sid = self._market_id_strict(_required(params, "symbol"))
        interval = _required(params, "interval")
        if interval not in INTERVAL_MS:
            raise BinanceApiError(400, -1120, "Invalid interval.")
        limit = _int_param(params, "limit") or 500
        if not 1 <= limit <= 1000:
            raise BinanceApiError(400, -1130, "Invalid data sent for a parameter.")
        return self._candles(
            sid,
            interval,
            limit=limit,
            start_ms=_int_param(params, "startTime"),
            end_ms=_int_param(params, "endTime"),
        )

    def _candles(
        self, sid: str, interval: str, *, limit: int, start_ms: int | None, end_ms: int | None
    ) -> list[list[Any]]:
        market = self._markets[sid]
        omitted = self._omitted.get(sid, [])
        recorded = self._recorded.get((sid, interval))
        if recorded is not None:
            kept = [c for c in recorded if not any(a <= c[0] < b for a, b in omitted)]
            return recorded_klines(
                kept,
                interval,
                now_ms=self._now_ms(),
                limit=limit,
                start_ms=start_ms,
                end_ms=end_ms,
            )
        length = INTERVAL_MS[interval]
        # Generate enough candles that ``limit`` remain once the omitted ones are left out.
        extra = sum((b - a) // length + 1 for a, b in omitted)
        rows = generate_klines(
            sid,
            self._feed(sid),
            interval,
            now_ms=self._now_ms(),
            limit=limit + extra,
            start_ms=start_ms,
            end_ms=end_ms,
            tick=market.tick,
            step=market.step,
        )
        if not omitted:
            return rows
        kept_rows = without_ranges(rows, omitted)
        return kept_rows[:limit] if start_ms is not None else kept_rows[-limit:]

    # ============================================================================ signed
    def _account(self, params: dict[str, str]) -> dict[str, Any]:
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        assets = sorted(set(self._free) | set(self._locked))
        balances = [
            {
                "asset": a,
                "free": _fmt(self._free.get(a, Decimal(0))),
                "locked": _fmt(self._locked.get(a, Decimal(0))),
            }
            for a in assets
        ]
        if omit_zero:
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        commission = int(self.fee_rate * 10_000)
        return {
            "makerCommission": commission,
            "takerCommission": commission,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _fmt(self.fee_rate),
                "taker": _fmt(self.fee_rate),
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": self.can_withdraw,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self._now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _api_restrictions(self, params: dict[str, str]) -> dict[str, Any]:
        if not self.restrictions_endpoint_enabled:
            raise _NotFound()
        return {
            "ipRestrict": False,
            "createTime": 1_700_000_000_000,
            "enableInternalTransfer": False,
            "enableFutures": False,
            "enablePortfolioMarginTrading": False,
            "enableVanillaOptions": False,
            "permitsUniversalTransfer": False,
            "enableReading": True,
            "enableSpotAndMarginTrading": True,
            "enableWithdrawals": self.can_withdraw,
            "enableMargin": False,
            "enableFixApiTrade": False,
            "enableFixReadOnly": False,
        }

    def _new_order(self, params: dict[str, str]) -> dict[str, Any]:
        sid = self._market_id_strict(_required(params, "symbol"))
        market = self._markets[sid]
        side = _required(params, "side").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceApiError(400, -1117, "Invalid side.")
        order_type = _required(params, "type").upper()
        if order_type not in ("LIMIT", "MARKET", "LIMIT_MAKER"):
            raise BinanceApiError(400, -1116, "Invalid orderType.")
        if order_type not in market.info.get("orderTypes", []):
            raise BinanceApiError(400, -1013, "Unsupported order combination")
        client_id = params.get("newClientOrderId") or _random_client_id()
        if not _CLIENT_ID_RE.match(client_id):
            raise BinanceApiError(
                400,
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal "
                "range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        if any(o.is_open and o.client_order_id == client_id for o in self.orders):
            raise BinanceApiError(400, -2010, "Duplicate order sent.")
        bid, ask = self._bid_ask(sid)
        taker_price = ask if side == "BUY" else bid
        time_in_force = "GTC"
        quote_qty = Decimal(0)
        if order_type == "MARKET":
            if "quantity" in params:
                quantity = _decimal_param(params, "quantity")
            elif "quoteOrderQty" in params:
                quote_qty = _decimal_param(params, "quoteOrderQty")
                quantity = (quote_qty / taker_price).quantize(market.step, rounding=ROUND_FLOOR)
            else:
                raise BinanceApiError(
                    400,
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            price = Decimal(0)
            expected_price = taker_price
        else:
            quantity = _decimal_param(params, "quantity")
            price = _decimal_param(params, "price")
            if order_type == "LIMIT":
                time_in_force = _required(params, "timeInForce").upper()
                if time_in_force not in ("GTC", "IOC", "FOK"):
                    raise BinanceApiError(400, -1115, "Invalid timeInForce.")
            expected_price = price
            self._check_price_filter(market, price)
        self._check_lot_size(market, quantity, order_type)
        self._check_notional(market, quantity, expected_price, order_type)
        crosses = order_type == "MARKET" or (price >= ask if side == "BUY" else price <= bid)
        if order_type == "LIMIT_MAKER" and crosses:
            raise BinanceApiError(400, -2010, "Order would immediately match and take.")
        # Funds needed: what a taker fill costs now, or what the resting order locks.
        fill_price = taker_price if crosses else price
        if side == "BUY":
            need_asset, need = market.quote, quantity * (fill_price if crosses else price)
        else:
            need_asset, need = market.base, quantity
        if self._free.get(need_asset, Decimal(0)) < need:
            raise BinanceApiError(
                400, -2010, "Account has insufficient balance for requested action."
            )
        now = self._now_ms()
        order = LocalOrder(
            order_id=self._next_order_id,
            client_order_id=client_id,
            symbol=sid,
            side=side,
            type=order_type,
            time_in_force=time_in_force,
            price=price,
            orig_qty=quantity,
            time_ms=now,
            update_time_ms=now,
            orig_quote_order_qty=quote_qty,
        )
        self._next_order_id += 1
        self.orders.append(order)
        if crosses:
            self._free[need_asset] -= need
            self._locked[need_asset] = self._locked.get(need_asset, Decimal(0)) + need
            self._fill(order, fill_price, maker=False, now=now)
        elif time_in_force in ("IOC", "FOK"):
            order.status = "EXPIRED"
        else:
            self._free[need_asset] -= need
            self._locked[need_asset] = self._locked.get(need_asset, Decimal(0)) + need
        resp_type = params.get("newOrderRespType", "FULL").upper()
        if resp_type == "ACK":
            return {
                "symbol": sid,
                "orderId": order.order_id,
                "orderListId": -1,
                "clientOrderId": order.client_order_id,
                "transactTime": now,
            }
        reply = self._order_result(order, now)
        if resp_type == "FULL":
            reply["fills"] = [
                {
                    "price": _fmt(f.price),
                    "qty": _fmt(f.qty),
                    "commission": _fmt(f.commission),
                    "commissionAsset": f.commission_asset,
                    "tradeId": f.trade_id,
                }
                for f in order.fills
            ]
        return reply

    def _query_order(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find_order(params, code=-2013, msg="Order does not exist.")
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": _fmt(order.price),
            "origQty": _fmt(order.orig_qty),
            "executedQty": _fmt(order.executed_qty),
            "cummulativeQuoteQty": _fmt(order.cumm_quote_qty),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": order.time_ms,
            "updateTime": order.update_time_ms,
            "isWorking": True,
            "workingTime": order.time_ms,
            "origQuoteOrderQty": _fmt(order.orig_quote_order_qty),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """``GET /api/v3/myTrades``: the account's trades in one symbol (optionally of one
        ``orderId``, or from ``fromId`` on), oldest first, at most ``limit`` (default 500)."""
        sid = params.get("symbol", "")
        if sid not in self._markets:
            raise BinanceApiError(400, -1121, "Invalid symbol.")
        order_id = params.get("orderId")
        from_id = int(params["fromId"]) if params.get("fromId") else None
        limit = min(int(params.get("limit") or 500), 1000)
        trades: list[dict[str, Any]] = []
        for order in self.orders:
            if order.symbol != sid or (order_id is not None and str(order.order_id) != order_id):
                continue
            for fill in order.fills:
                if from_id is not None and fill.trade_id < from_id:
                    continue
                trades.append(
                    {
                        "symbol": sid,
                        "id": fill.trade_id,
                        "orderId": order.order_id,
                        "orderListId": -1,
                        "price": _fmt(fill.price),
                        "qty": _fmt(fill.qty),
                        "quoteQty": _fmt(fill.price * fill.qty),
                        "commission": _fmt(fill.commission),
                        "commissionAsset": fill.commission_asset,
                        "time": order.update_time_ms or order.time_ms,
                        "isBuyer": order.side == "BUY",
                        "isMaker": False,
                        "isBestMatch": True,
                    }
                )
        trades.sort(key=lambda t: int(t["id"]))
        return trades[:limit]

    def _cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find_order(params, code=-2011, msg="Unknown order sent.")
        if not order.is_open:
            raise BinanceApiError(400, -2011, "Unknown order sent.")
        market = self._markets[order.symbol]
        remaining = order.orig_qty - order.executed_qty
        if order.side == "BUY":
            asset, amount = market.quote, remaining * order.price
        else:
            asset, amount = market.base, remaining
        self._locked[asset] -= amount
        self._free[asset] = self._free.get(asset, Decimal(0)) + amount
        now = self._now_ms()
        order.status = "CANCELED"
        order.update_time_ms = now
        return {
            "symbol": order.symbol,
            "origClientOrderId": order.client_order_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": params.get("newClientOrderId") or _random_client_id(),
            "transactTime": now,
            **_order_state(order),
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        sid = self._market_id_strict(params["symbol"]) if "symbol" in params else None
        return [
            self._query_order({"symbol": o.symbol, "orderId": str(o.order_id)})
            for o in self.orders
            if o.is_open and (sid is None or o.symbol == sid)
        ]

    # ============================================================================ internals
    def _order_result(self, order: LocalOrder, now: int) -> dict[str, Any]:
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": now,
            **_order_state(order),
            "workingTime": order.time_ms,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _fill(self, order: LocalOrder, price: Decimal, *, maker: bool, now: int) -> None:
        """Fill the rest of ``order`` at ``price``; its funds were locked beforehand."""
        market = self._markets[order.symbol]
        qty = order.orig_qty - order.executed_qty
        quote = (qty * price).quantize(_EIGHT)
        bnb = self._bnb_commission(quote, market.quote)
        if order.side == "BUY":
            # Both a taker fill and a resting limit locked exactly qty × fill price.
            locked = qty * price
            self._locked[market.quote] -= locked
            self._free[market.quote] += locked - quote
            commission = bnb if bnb is not None else (qty * self.fee_rate).quantize(_EIGHT)
            self._credit(market.base, qty if bnb is not None else qty - commission)
            commission_asset = "BNB" if bnb is not None else market.base
        else:
            self._locked[market.base] -= qty
            commission = bnb if bnb is not None else (quote * self.fee_rate).quantize(_EIGHT)
            self._credit(market.quote, quote if bnb is not None else quote - commission)
            commission_asset = "BNB" if bnb is not None else market.quote
        if bnb is not None:
            self._free["BNB"] -= bnb
        order.fills.append(LocalFill(price, qty, commission, commission_asset, self._next_trade_id))
        self._next_trade_id += 1
        order.executed_qty += qty
        order.cumm_quote_qty += quote
        order.status = "FILLED"
        order.update_time_ms = now

    def _bnb_commission(self, quote_value: Decimal, quote_asset: str) -> Decimal | None:
        """With ``pay_fees_in_bnb`` and enough BNB: the commission in BNB at a 25 % discount
        (Binance's rule), valued at the BNB price; ``None`` when BNB does not pay."""
        bnb_price = self.bnb_price
        if not self.pay_fees_in_bnb or not bnb_price:
            return None
        commission = (quote_value * self.fee_rate * Decimal("0.75") / bnb_price).quantize(_EIGHT)
        return commission if self._free.get("BNB", Decimal(0)) >= commission else None

    def _credit(self, asset: str, amount: Decimal) -> None:
        self._free[asset] = self._free.get(asset, Decimal(0)) + amount

    def _find_order(self, params: dict[str, str], *, code: int, msg: str) -> LocalOrder:
        sid = self._market_id_strict(_required(params, "symbol"))
        order_id = params.get("orderId")
        client_id = params.get("origClientOrderId")
        if not order_id and not client_id:
            raise BinanceApiError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        # Newest first: a client id may be reused once its earlier order is closed.
        for order in reversed(self.orders):
            if order.symbol != sid:
                continue
            if order_id and str(order.order_id) == order_id:
                return order
            if not order_id and order.client_order_id == client_id:
                return order
        raise BinanceApiError(400, code, msg)

    def _check_price_filter(self, market: _Market, price: Decimal) -> None:
        pf = market.filters.get("PRICE_FILTER")
        if pf is None:
            return
        min_price, max_price = Decimal(pf["minPrice"]), Decimal(pf["maxPrice"])
        tick = Decimal(pf["tickSize"])
        if (
            price <= 0
            or (min_price and price < min_price)
            or (max_price and price > max_price)
            or (tick and (price - min_price) % tick != 0)
        ):
            raise BinanceApiError(400, -1013, "Filter failure: PRICE_FILTER")

    def _check_lot_size(self, market: _Market, qty: Decimal, order_type: str) -> None:
        for name in ("LOT_SIZE", "MARKET_LOT_SIZE") if order_type == "MARKET" else ("LOT_SIZE",):
            lot = market.filters.get(name)
            if lot is None:
                continue
            min_qty, max_qty, step = (Decimal(lot[k]) for k in ("minQty", "maxQty", "stepSize"))
            if (
                qty <= 0
                or qty < min_qty
                or (max_qty and qty > max_qty)
                or (step and (qty - min_qty) % step != 0)
            ):
                raise BinanceApiError(400, -1013, f"Filter failure: {name}")

    def _check_notional(
        self, market: _Market, qty: Decimal, price: Decimal, order_type: str
    ) -> None:
        notional = qty * price
        f = market.filters.get("NOTIONAL")
        if f is not None:
            is_market = order_type == "MARKET"
            if (not is_market or f.get("applyMinToMarket", True)) and notional < Decimal(
                f["minNotional"]
            ):
                raise BinanceApiError(400, -1013, "Filter failure: NOTIONAL")
            max_notional = Decimal(f.get("maxNotional") or 0)
            if (
                (not is_market or f.get("applyMaxToMarket", False))
                and max_notional
                and (notional > max_notional)
            ):
                raise BinanceApiError(400, -1013, "Filter failure: NOTIONAL")
        f = market.filters.get("MIN_NOTIONAL")
        applies = f is not None and (order_type != "MARKET" or f.get("applyToMarket", True))
        if f is not None and applies and notional < Decimal(f["minNotional"]):
            raise BinanceApiError(400, -1013, "Filter failure: MIN_NOTIONAL")

    def _bid_ask(self, sid: str) -> tuple[Decimal, Decimal]:
        feed = self._feed(sid)
        tick = self._markets[sid].tick
        half = feed * self.spread / 2
        bid = ((feed - half) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
        ask = ((feed + half) / tick).to_integral_value(rounding=ROUND_CEILING) * tick
        return bid, ask

    def _feed(self, sid: str) -> Decimal:
        try:
            return self._prices[sid]
        except KeyError:
            raise BinanceApiError(400, -1121, "Invalid symbol.") from None

    def _market(self, sid: str) -> _Market:
        try:
            return self._markets[sid]
        except KeyError:
            raise BinanceApiError(400, -1121, "Invalid symbol.") from None

    def _market_id_strict(self, sid: str) -> str:
        self._market(sid)
        return sid

    def _has_market(self, sid: str) -> bool:
        return sid in self._markets


#: A recorded candle: open time (ms), open, high, low, close, volume.
_RecordedCandle = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]


def _decimal(value: Any) -> Decimal:
    # Through str: a float's shortest repr (16704.1), not its binary expansion.
    return Decimal(str(value))


class _NotFound(BinanceApiError):
    def __init__(self) -> None:
        super().__init__(404, 0, "Not found")


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (exchangeInfo entries)."""
    return json.loads(json.dumps(value))


def _without_signature(text: str) -> str:
    return "&".join(p for p in text.split("&") if p and not p.startswith("signature="))


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if value == "":
        raise BinanceApiError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _int_param(params: dict[str, str], name: str, *, required: bool = False) -> int | None:
    value = _required(params, name) if required else params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise BinanceApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        ) from None


def _decimal_param(params: dict[str, str], name: str) -> Decimal:
    value = _required(params, name)
    if not _NUMBER_RE.match(value):
        raise BinanceApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the regex already guarantees a number
        raise BinanceApiError(400, -1100, f"Illegal characters in '{name}'.") from None


def _random_client_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(22))
