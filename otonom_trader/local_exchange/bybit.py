"""A smaller local stand-in of Bybit's v5 API (spot, unified trading account) for ``ccxt.bybit``.

Endpoints: ``GET /v5/market/time``, ``/v5/market/instruments-info?category=spot``,
``/v5/market/tickers``; signed ``GET /v5/asset/coin/query-info``, ``/v5/user/query-api``,
``/v5/account/info``, ``/v5/account/wallet-balance``, ``/v5/order/realtime``,
``/v5/order/history`` and ``POST /v5/order/create``, ``/v5/order/cancel``.

Every answer is Bybit's envelope ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``
with HTTP 200 (Bybit reports business errors in ``retCode``). Signed requests carry
``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW`` and ``X-BAPI-SIGN`` = hex
HMAC-SHA256(secret, timestamp + key + recvWindow + (query string | JSON body)); a bad key is
``10003``, a bad signature ``10004``, a stale timestamp ``10002``.

Orders are checked against the shipped instruments' ``lotSizeFilter``/``priceFilter``
(``170137``/``170136``/``170140``/``170134``), balances (``170131``) and open ``orderLinkId``
duplicates (``170141``). Market orders fill at the feed, limit orders rest until
:meth:`LocalBybitExchange.set_price` crosses them; the fee (0.1 %) is taken in the received
asset. :attr:`LocalBybitExchange.orders` holds every accepted order as a
:class:`~otonom_trader.local_exchange.binance.LocalOrder` (``symbol`` is Bybit's id).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from otonom_trader.local_exchange.account import LocalFill, LocalOrder, SpotAccountExchange
from otonom_trader.local_exchange.binance import DEFAULT_PRICES
from otonom_trader.local_exchange.faults import FaultKind
from otonom_trader.local_exchange.server import (
    Clock,
    LocalReply,
    LocalRequest,
    utc_now,
)

_NOT_FOUND_HTML = "<html><body><h2>404 Not found</h2></body></html>"
#: Bybit's published per-UID, per-second limits of the private endpoints served here (spot,
#: unified account); any other private endpoint: ``DEFAULT_ENDPOINT_LIMIT``.
PUBLISHED_ENDPOINT_LIMITS = {
    "v5/order/create": 20,
    "v5/order/cancel": 20,
    "v5/order/realtime": 50,
    "v5/order/history": 50,
    "v5/account/wallet-balance": 50,
}
DEFAULT_ENDPOINT_LIMIT = 10
_STATUS = {"NEW": "New", "FILLED": "Filled", "CANCELED": "Cancelled", "EXPIRED": "Cancelled"}


@cache
def bybit_spot_instruments() -> dict[str, Any]:
    """The shipped Bybit spot ``instruments-info`` entries (from ccxt's fixtures, MIT)."""
    text = (
        resources.files("otonom_trader.local_exchange")
        .joinpath("data/bybit_spot_instruments.json")
        .read_text()
    )
    data: dict[str, Any] = json.loads(text)
    return data


class BybitApiError(Exception):
    """A business error: HTTP 200 with ``retCode``/``retMsg``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class _NotFound(Exception):
    pass


def _plain(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    return text


class LocalBybitExchange(SpotAccountExchange):
    """Bybit v5 spot over HTTP on 127.0.0.1 (see the module docstring).

    Same constructor and test API as
    :class:`~otonom_trader.local_exchange.binance.LocalBinanceExchange`: ``set_price``,
    ``inject_fault``, ``orders``, ``open_orders()``, ``balance()``, ``locked()``,
    ``can_withdraw`` (adds ``"Withdraw"`` to the key's ``Wallet`` permissions) and
    ``restrictions_endpoint_enabled`` (``False`` makes ``/v5/user/query-api`` answer 404).
    """

    def __init__(
        self,
        api_key: str = "test-key",
        api_secret: str = "test-secret",
        balances: dict[str, Decimal] | None = None,
        prices: dict[str, Decimal] | None = None,
        *,
        fee_rate: Decimal = Decimal("0.001"),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(
            api_key, api_secret, balances, fee_rate=fee_rate, host=host, port=port, clock=clock
        )
        self._instruments = {i["symbol"]: i for i in bybit_spot_instruments()["list"]}
        self._by_unified = {
            f"{i['baseCoin']}/{i['quoteCoin']}": s for s, i in self._instruments.items()
        }
        self._prices = {
            self._market_id(s): Decimal(p) for s, p in {**DEFAULT_PRICES, **(prices or {})}.items()
        }
        self._next_trade_id = 1
        self._next_order_id = 1_900_000_000_000_000_001
        #: Requests per second each API key may send to a private endpoint (Bybit's published
        #: spot limits); a test may lower or raise one (a VIP account gets more).
        self.endpoint_limits: dict[str, int] = dict(PUBLISHED_ENDPOINT_LIMITS)
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        #: Requests refused with retCode 10006 because their key was over an endpoint's limit.
        self.rate_limited = 0

    # ============================================================================ test/drill API
    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move the feed of ``symbol`` (``BTC/USDT`` or ``BTCUSDT``); crossed limits fill."""
        sid = self._market_id(symbol)
        with self._lock:
            self._prices[sid] = Decimal(price)
            for order in self.orders:
                if (
                    order.is_open
                    and order.symbol == sid
                    and (
                        (order.side == "BUY" and price <= order.price)
                        or (order.side == "SELL" and price >= order.price)
                    )
                ):
                    self._fill(order, order.price)

    def fault_reply(self, kind: FaultKind) -> LocalReply:
        """Bybit-flavoured answers of the error-status faults."""
        if kind in (FaultKind.HTTP_429, FaultKind.HTTP_418):
            status = 429 if kind is FaultKind.HTTP_429 else 418
            return LocalReply(status, self._envelope(None, 10006, "Too many visits!"))
        if kind is FaultKind.CODE_1007:
            # Bybit's "we do not know what happened" is retCode 10000 in an HTTP 200 reply.
            return LocalReply(200, self._envelope(None, 10000, "Server Timeout"))
        return self._server_error_page(kind)

    # ============================================================================ dispatch
    def handle(self, request: LocalRequest) -> LocalReply:
        """Route one request; business errors become ``retCode`` envelopes (HTTP 200)."""
        public = {
            ("GET", "/v5/market/time"): self._time,
            ("GET", "/v5/market/instruments-info"): self._instruments_info,
            ("GET", "/v5/market/tickers"): self._tickers,
        }
        signed = {
            ("GET", "/v5/asset/coin/query-info"): self._coin_info,
            ("GET", "/v5/user/query-api"): self._query_api,
            ("GET", "/v5/account/info"): self._account_info,
            ("GET", "/v5/account/wallet-balance"): self._wallet_balance,
            ("GET", "/v5/order/realtime"): self._order_realtime,
            ("GET", "/v5/order/history"): self._order_history,
            ("POST", "/v5/order/create"): self._create_order,
            ("POST", "/v5/order/cancel"): self._cancel_order,
        }
        route = (request.method, request.path)
        try:
            if route in public:
                return LocalReply(200, self._envelope(public[route](request.params)))
            if route in signed:
                self._authenticate(request)
                limit_headers = self._count_request(request)
                if limit_headers["X-Bapi-Limit-Status"] == "-1":
                    limit_headers["X-Bapi-Limit-Status"] = "0"
                    envelope = self._envelope({}, 10006, "Too many visits!")
                    return LocalReply(200, envelope, headers=limit_headers)
                params = dict(request.params)
                if request.method == "POST":
                    params = {k: str(v) for k, v in json.loads(request.body or "{}").items()}
                with self._lock:
                    result = signed[route](params)
                return LocalReply(200, self._envelope(result), headers=limit_headers)
        except BybitApiError as err:
            return LocalReply(200, self._envelope({}, err.code, err.msg))
        except _NotFound:
            pass
        return LocalReply(404, _NOT_FOUND_HTML, content_type="text/html")

    def _count_request(self, request: LocalRequest) -> dict[str, str]:
        """Count a private request against its key's per-second limit of the endpoint (a fixed
        window from the window's first request, as Bybit's reset timestamp describes it) and
        answer Bybit's limit headers. ``X-Bapi-Limit-Status`` is ``-1`` when over the limit
        (the caller refuses the request, retCode 10006)."""
        path = request.path.strip("/")
        limit = self.endpoint_limits.get(path, DEFAULT_ENDPOINT_LIMIT)
        key = (request.headers.get("x-bapi-api-key", ""), path)
        now = time.time()
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= 1.0:
                start, count = now, 0
            count += 1
            self._windows[key] = (start, count)
            if count > limit:
                self.rate_limited += 1
        return {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(limit - count if count <= limit else -1),
            "X-Bapi-Limit-Reset-Timestamp": str(int((start + 1.0) * 1000)),
        }

    def _envelope(self, result: Any, code: int = 0, msg: str = "OK") -> dict[str, Any]:
        return {
            "retCode": code,
            "retMsg": msg,
            "result": result if result is not None else {},
            "retExtInfo": {},
            "time": self._now_ms(),
        }

    def _authenticate(self, request: LocalRequest) -> None:
        key = request.headers.get("x-bapi-api-key", "")
        if not key or not hmac.compare_digest(key, self._api_key):
            raise BybitApiError(10003, "API key is invalid.")
        timestamp = request.headers.get("x-bapi-timestamp", "")
        recv_window = request.headers.get("x-bapi-recv-window", "5000")
        payload = request.body if request.method == "POST" else request.raw_query
        expected = hmac.new(
            self._api_secret.encode(),
            (timestamp + key + recv_window + payload).encode(),
            hashlib.sha256,
        ).hexdigest()
        signature = request.headers.get("x-bapi-sign", "")
        if not signature or not hmac.compare_digest(signature.lower(), expected):
            raise BybitApiError(10004, "error sign! origin_string[(hidden)]")
        now = self._now_ms()
        try:
            ts, window = int(timestamp), int(recv_window)
        except ValueError:
            raise BybitApiError(10002, "invalid request, please check your timestamp") from None
        if ts > now + 1000 or now - ts > window:
            raise BybitApiError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{ts}],server_timestamp[{now}],recv_window[{window}]",
            )

    # ============================================================================ public
    def _time(self, params: dict[str, str]) -> dict[str, Any]:
        now = self._now_ms()
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    def _instruments_info(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("category") != "spot":
            raise BybitApiError(10001, "params error: category only supports spot here")
        items = list(self._instruments.values())
        if "symbol" in params:
            items = [i for i in items if i["symbol"] == params["symbol"]]
        return {"category": "spot", "list": items, "nextPageCursor": ""}

    def _tickers(self, params: dict[str, str]) -> dict[str, Any]:
        sids = [self._strict(params["symbol"])] if "symbol" in params else list(self._prices)
        rows = [
            {
                "symbol": sid,
                "lastPrice": _plain(p),
                "bid1Price": _plain(p),
                "bid1Size": "1",
                "ask1Price": _plain(p),
                "ask1Size": "1",
                "prevPrice24h": _plain(p),
                "price24hPcnt": "0",
                "highPrice24h": _plain(p),
                "lowPrice24h": _plain(p),
                "turnover24h": "0",
                "volume24h": "0",
            }
            for sid in sids
            for p in [self._prices[sid]]
        ]
        return {"category": "spot", "list": rows}

    # ============================================================================ signed
    def _coin_info(self, params: dict[str, str]) -> dict[str, Any]:
        coins = sorted(
            {i["baseCoin"] for i in self._instruments.values()}
            | {i["quoteCoin"] for i in self._instruments.values()}
        )
        return {"rows": [{"name": c, "coin": c, "remainAmount": "0", "chains": []} for c in coins]}

    def _query_api(self, params: dict[str, str]) -> dict[str, Any]:
        if not self.restrictions_endpoint_enabled:
            raise _NotFound()
        wallet = ["AccountTransfer", "SubMemberTransfer"]
        if self.can_withdraw:
            wallet.append("Withdraw")
        return {
            "id": "1001",
            "note": "local exchange key",
            "apiKey": self._api_key[:4] + "****",
            "readOnly": 0,
            "secret": "",
            "permissions": {
                "ContractTrade": [],
                "Spot": ["SpotTrade"],
                "Wallet": wallet,
                "Options": [],
                "Derivatives": [],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": [],
                "NFT": [],
                "Affiliate": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": 90,
            "expiredAt": "",
            "createdAt": "2026-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 24617703,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }

    def _account_info(self, params: dict[str, str]) -> dict[str, Any]:
        return {
            "unifiedMarginStatus": 6,
            "marginMode": "REGULAR_MARGIN",
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
            "updatedTime": str(self._now_ms()),
        }

    def _wallet_balance(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("accountType", "UNIFIED") != "UNIFIED":
            raise BybitApiError(10001, "accountType only support UNIFIED.")
        coins = []
        for asset in sorted(set(self._free) | set(self._locked)):
            free = self._free.get(asset, Decimal(0))
            locked = self._locked.get(asset, Decimal(0))
            coins.append(
                {
                    "coin": asset,
                    "walletBalance": _plain(free + locked),
                    "locked": _plain(locked),
                    "equity": _plain(free + locked),
                    "totalOrderIM": "0",
                    "totalPositionIM": "0",
                    "borrowAmount": "0",
                    "accruedInterest": "0",
                    "unrealisedPnl": "0",
                    "cumRealisedPnl": "0",
                    "marginCollateral": True,
                    "collateralSwitch": True,
                }
            )
        return {"list": [{"accountType": "UNIFIED", "coin": coins}]}

    def _create_order(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("category") != "spot":
            raise BybitApiError(10001, "params error: category only supports spot here")
        sid = self._strict(params.get("symbol", ""))
        inst = self._instruments[sid]
        side = {"Buy": "BUY", "Sell": "SELL"}.get(params.get("side", ""))
        order_type = {"Market": "MARKET", "Limit": "LIMIT"}.get(params.get("orderType", ""))
        if side is None or order_type is None:
            raise BybitApiError(10001, "params error: side or orderType invalid")
        link_id = params.get("orderLinkId") or uuid.uuid4().hex
        if any(o.is_open and o.client_order_id == link_id for o in self.orders):
            raise BybitApiError(170141, "Duplicate clientOrderId")
        qty = _number(params, "qty")
        feed = self._prices[sid]
        lot, tick = inst["lotSizeFilter"], Decimal(inst["priceFilter"]["tickSize"])
        if order_type == "MARKET":
            # Bybit spot market buys count qty in the quote coin unless marketUnit says base.
            unit = params.get("marketUnit") or ("quoteCoin" if side == "BUY" else "baseCoin")
            if unit == "quoteCoin":
                step = Decimal(lot["basePrecision"])
                qty = (qty / feed).quantize(step, rounding=ROUND_FLOOR)
            price, fill_price = Decimal(0), feed
        else:
            price = _number(params, "price")
            if price % tick != 0:
                raise BybitApiError(170134, "Order price has too many decimals.")
            fill_price = feed if (price >= feed if side == "BUY" else price <= feed) else price
        if qty % Decimal(lot["basePrecision"]) != 0:
            raise BybitApiError(170137, "Order quantity has too many decimals.")
        if qty < Decimal(lot["minOrderQty"]):
            raise BybitApiError(170136, "Order quantity below the lower limit.")
        if qty > Decimal(lot["maxOrderQty"]):
            raise BybitApiError(170136, "Order quantity exceeded upper limit.")
        value = qty * (fill_price if order_type == "MARKET" else price)
        if value < Decimal(lot["minOrderAmt"]):
            raise BybitApiError(170140, "Order value exceeded lower limit.")
        crosses = order_type == "MARKET" or fill_price != price or price == feed
        base, quote = inst["baseCoin"], inst["quoteCoin"]
        need_asset, need = (quote, qty * fill_price) if side == "BUY" else (base, qty)
        if self._free.get(need_asset, Decimal(0)) < need:
            raise BybitApiError(170131, "Insufficient balance.")
        now = self._now_ms()
        order = LocalOrder(
            order_id=0,  # numbered below, once the order is accepted
            client_order_id=link_id,
            symbol=sid,
            side=side,
            type=order_type,
            time_in_force=params.get("timeInForce") or ("IOC" if order_type == "MARKET" else "GTC"),
            price=price,
            orig_qty=qty,
            time_ms=now,
            update_time_ms=now,
        )
        order.order_id = self._next_order_id
        self._next_order_id += 1
        self.orders.append(order)
        self._free[need_asset] -= need
        self._locked[need_asset] = self._locked.get(need_asset, Decimal(0)) + need
        if crosses:
            self._fill(order, fill_price)
        return {"orderId": str(order.order_id), "orderLinkId": order.client_order_id}

    def _cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find(params)
        if order is None or not order.is_open:
            raise BybitApiError(170213, "Order does not exist.")
        inst = self._instruments[order.symbol]
        remaining = order.orig_qty - order.executed_qty
        asset, amount = (
            (inst["quoteCoin"], remaining * order.price)
            if order.side == "BUY"
            else (inst["baseCoin"], remaining)
        )
        self._locked[asset] -= amount
        self._free[asset] = self._free.get(asset, Decimal(0)) + amount
        order.status = "CANCELED"
        order.update_time_ms = self._now_ms()
        return {"orderId": str(order.order_id), "orderLinkId": order.client_order_id}

    def _order_realtime(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("orderId") or params.get("orderLinkId"):
            found = self._find(params)
            orders = [found] if found is not None else []
        else:
            open_only = params.get("openOnly", "0") == "0"
            orders = [o for o in self.orders if o.is_open == open_only]
        return self._order_list(orders, params)

    def _order_history(self, params: dict[str, str]) -> dict[str, Any]:
        orders = [o for o in self.orders if not o.is_open]
        if params.get("orderId") or params.get("orderLinkId"):
            found = self._find(params)
            orders = [found] if found is not None and not found.is_open else []
        return self._order_list(orders, params)

    # ============================================================================ internals
    def _order_list(self, orders: list[LocalOrder], params: dict[str, str]) -> dict[str, Any]:
        sid = params.get("symbol")
        rows = [self._order_json(o) for o in reversed(orders) if sid is None or o.symbol == sid]
        limit = int(params.get("limit") or 20)
        return {"category": "spot", "list": rows[:limit], "nextPageCursor": ""}

    def _order_json(self, order: LocalOrder) -> dict[str, Any]:
        executed = order.executed_qty
        fee = {f.commission_asset: _plain(f.commission) for f in order.fills}
        average = order.cumm_quote_qty / executed if executed else Decimal(0)
        leaves = order.orig_qty - executed if order.is_open else Decimal(0)
        return {
            "orderId": str(order.order_id),
            "orderLinkId": order.client_order_id,
            "blockTradeId": "",
            "symbol": order.symbol,
            "price": _plain(order.price),
            "qty": _plain(order.orig_qty),
            "side": "Buy" if order.side == "BUY" else "Sell",
            "isLeverage": "0",
            "positionIdx": 0,
            "orderStatus": _STATUS[order.status],
            "cancelType": "CancelByUser" if order.status == "CANCELED" else "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": _plain(average) if executed else "",
            "leavesQty": _plain(leaves),
            "leavesValue": _plain(leaves * order.price),
            "cumExecQty": _plain(executed),
            "cumExecValue": _plain(order.cumm_quote_qty),
            "cumExecFee": next(iter(fee.values()), "0"),
            "cumFeeDetail": fee,
            "timeInForce": order.time_in_force,
            "orderType": "Market" if order.type == "MARKET" else "Limit",
            "stopOrderType": "",
            "triggerPrice": "0",
            "takeProfit": "",
            "stopLoss": "",
            "reduceOnly": False,
            "closeOnTrigger": False,
            "smpType": "None",
            "marketUnit": "baseCoin" if order.type == "MARKET" else "",
            "createdTime": str(order.time_ms),
            "updatedTime": str(order.update_time_ms),
        }

    def _fill(self, order: LocalOrder, price: Decimal) -> None:
        inst = self._instruments[order.symbol]
        base, quote_coin = inst["baseCoin"], inst["quoteCoin"]
        qty = order.orig_qty - order.executed_qty
        quote = qty * price
        if order.side == "BUY":
            self._locked[quote_coin] -= quote
            commission = qty * self.fee_rate
            self._free[base] = self._free.get(base, Decimal(0)) + qty - commission
            asset = base
        else:
            self._locked[base] -= qty
            commission = quote * self.fee_rate
            self._free[quote_coin] = self._free.get(quote_coin, Decimal(0)) + quote - commission
            asset = quote_coin
        order.fills.append(LocalFill(price, qty, commission, asset, self._next_trade_id))
        self._next_trade_id += 1
        order.executed_qty += qty
        order.cumm_quote_qty += quote
        order.status = "FILLED"
        order.update_time_ms = self._now_ms()

    def _find(self, params: dict[str, str]) -> LocalOrder | None:
        order_id, link_id = params.get("orderId"), params.get("orderLinkId")
        for order in reversed(self.orders):
            if order_id and str(order.order_id) == order_id:
                return order
            if not order_id and link_id and order.client_order_id == link_id:
                return order
        return None

    def _strict(self, sid: str) -> str:
        if sid not in self._instruments:
            raise BybitApiError(10001, "params error: symbol invalid")
        return sid

    def _has_market(self, sid: str) -> bool:
        return sid in self._instruments


def _number(params: dict[str, str], name: str) -> Decimal:
    try:
        value = Decimal(params.get(name, ""))
    except InvalidOperation:
        raise BybitApiError(10001, f"params error: {name} invalid") from None
    if value <= 0:
        raise BybitApiError(10001, f"params error: {name} invalid")
    return value
