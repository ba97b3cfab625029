"""map_ccxt_errors: every Binance code → the right BrokerError, temporary or final, read or submit.

Two layers: ccxt's own ``handle_errors`` turns each Binance error body into its exception (the
real parsing path, no HTTP needed), and the local exchange returns the codes over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import ccxt
import pytest

from otonom_trader.broker.ccxt_broker import CcxtBroker
from otonom_trader.broker.ccxt_errors import (
    BINANCE_CODES,
    BYBIT_CODES,
    is_submit,
    map_ccxt_errors,
    translate,
)
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.broker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    BadExchangeReplyError,
    BrokerError,
    BrokerNetworkError,
    ExchangeUnavailableError,
    FinalBrokerError,
    InsufficientFundsError,
    InvalidOrderError,
    KillSwitchError,
    OrderNotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from otonom_trader.broker.types import OrderRequest, OrderSide
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.local_exchange.server import utc_now

READ = "binance: fetch balance"
SUBMIT = "binance: submit buy market order BTC/USDT"
URL = "http://127.0.0.1:1/api/v3/order"

# (HTTP status, code, msg, class on a read, class on a submit)
BINANCE_CASES: list[tuple[int, int, str, type[BrokerError], type[BrokerError]]] = [
    (500, -1000, "An unknown error occurred while processing the request.",
     ExchangeUnavailableError, AmbiguousOrderError),
    (500, -1001, "Internal error; unable to process your request. Please try again.",
     ExchangeUnavailableError, AmbiguousOrderError),
    (401, -1002, "You are not authorized to execute this request.",
     AuthenticationError, AuthenticationError),
    (429, -1003, "Too many requests; current limit is 6000 request weight per 1 MINUTE.",
     RateLimitError, RateLimitError),
    (418, -1003, "Way too many requests; IP(127.0.0.1) banned until 1700000000000.",
     RateLimitError, RateLimitError),
    (400, -1003, "Too much request weight used.", RateLimitError, RateLimitError),
    (500, -1006, "An unexpected response was received from the message bus. Execution status "
     "unknown.", ExchangeUnavailableError, AmbiguousOrderError),
    (503, -1007, "Timeout waiting for response from backend server. Send status unknown; "
     "execution status unknown.", BrokerNetworkError, AmbiguousOrderError),
    (503, -1008, "Spot server is currently overloaded with other requests. Please try again in "
     "a few minutes.", ExchangeUnavailableError, ExchangeUnavailableError),
    (400, -1013, "Filter failure: NOTIONAL", InvalidOrderError, InvalidOrderError),
    (400, -1013, "Filter failure: LOT_SIZE", InvalidOrderError, InvalidOrderError),
    (400, -1013, "Filter failure: PRICE_FILTER", InvalidOrderError, InvalidOrderError),
    (400, -1015, "Too many new orders; current limit is 50 orders per 10 SECOND.",
     RateLimitError, RateLimitError),
    (400, -1016, "This service is no longer available.",
     ExchangeUnavailableError, ExchangeUnavailableError),
    (400, -1021, "Timestamp for this request is outside of the recvWindow.",
     AuthenticationError, AuthenticationError),
    (400, -1022, "Signature for this request is not valid.",
     AuthenticationError, AuthenticationError),
    (400, -1100, "Illegal characters found in parameter 'newClientOrderId'.",
     InvalidOrderError, InvalidOrderError),
    (400, -1101, "Too many parameters sent for this endpoint.", InvalidOrderError,
     InvalidOrderError),
    (400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
     InvalidOrderError, InvalidOrderError),
    (400, -1103, "An unknown parameter was sent.", InvalidOrderError, InvalidOrderError),
    (400, -1104, "Not all sent parameters were read.", InvalidOrderError, InvalidOrderError),
    (400, -1105, "Parameter 'x' was empty.", InvalidOrderError, InvalidOrderError),
    (400, -1106, "Parameter 'price' sent when not required.", InvalidOrderError,
     InvalidOrderError),
    (400, -1111, "Precision is over the maximum defined for this asset.", InvalidOrderError,
     InvalidOrderError),
    (400, -1112, "No orders on book for symbol.", InvalidOrderError, InvalidOrderError),
    (400, -1114, "TimeInForce parameter sent when not required.", InvalidOrderError,
     InvalidOrderError),
    (400, -1115, "Invalid timeInForce.", InvalidOrderError, InvalidOrderError),
    (400, -1116, "Invalid orderType.", InvalidOrderError, InvalidOrderError),
    (400, -1117, "Invalid side.", InvalidOrderError, InvalidOrderError),
    (400, -1120, "Invalid interval.", InvalidOrderError, InvalidOrderError),
    (400, -1121, "Invalid symbol.", InvalidOrderError, InvalidOrderError),
    (400, -1130, "Invalid data sent for a parameter.", InvalidOrderError, InvalidOrderError),
    (400, -1131, "recvWindow must be less than 60000", InvalidOrderError, InvalidOrderError),
    (400, -2010, "Duplicate order sent.", InvalidOrderError, InvalidOrderError),
    (400, -2010, "Order would immediately match and take.", InvalidOrderError,
     InvalidOrderError),
    (400, -2010, "Account has insufficient balance for requested action.",
     InsufficientFundsError, InsufficientFundsError),
    (400, -2010, "This account may not place or cancel orders.", PermissionDeniedError,
     PermissionDeniedError),
    (400, -2011, "Unknown order sent.", OrderNotFoundError, OrderNotFoundError),
    (400, -2013, "Order does not exist.", OrderNotFoundError, OrderNotFoundError),
    (401, -2014, "API-key format invalid.", AuthenticationError, AuthenticationError),
    (401, -2015, "Invalid API-key, IP, or permissions for action.", AuthenticationError,
     AuthenticationError),
]  # fmt: skip


def _ccxt_exception(status: int, code: int, msg: str) -> ccxt.BaseError:
    """What ccxt.binance raises for this error reply (its real ``handle_errors``)."""
    exchange = ccxt.binance()
    body = json.dumps({"code": code, "msg": msg})
    try:
        exchange.handle_errors(status, "Error", URL, "POST", {}, body, json.loads(body), {}, "")
        exchange.handle_http_status_code(status, "Error", URL, "POST", body)
    except ccxt.BaseError as exc:
        return exc
    raise AssertionError(f"ccxt raised nothing for {status} {code}")


@pytest.mark.parametrize(
    ("status", "code", "msg", "on_read", "on_submit"),
    BINANCE_CASES,
    ids=[f"{c[1]}-{c[2][:24]}" for c in BINANCE_CASES],
)
def test_binance_error_maps_to_project_error_on_read_and_submit(
    status: int,
    code: int,
    msg: str,
    on_read: type[BrokerError],
    on_submit: type[BrokerError],
) -> None:
    exc = _ccxt_exception(status, code, msg)

    read_error = translate(exc, READ)
    submit_error = translate(exc, SUBMIT, "cid-1")

    assert type(read_error) is on_read
    assert type(submit_error) is on_submit
    assert read_error.temporary is issubclass(
        on_read, (RateLimitError, ExchangeUnavailableError, BrokerNetworkError)
    )
    assert msg[:20] in str(read_error)
    if "{" in str(exc):  # ccxt kept the body (code matches); message matches drop it
        assert f"(code {code})" in str(read_error)
    assert "\n" not in str(read_error)
    if on_submit is AmbiguousOrderError:
        assert isinstance(submit_error, AmbiguousOrderError)
        assert submit_error.client_order_id == "cid-1"
        assert "cid-1" in str(submit_error)


# (retCode, retMsg, class on a read, class on a submit) — Bybit answers HTTP 200 with the code.
BYBIT_CASES: list[tuple[int, str, type[BrokerError], type[BrokerError]]] = [
    (10000, "Server Timeout", BrokerNetworkError, AmbiguousOrderError),
    (10001, "params error: symbol invalid", InvalidOrderError, InvalidOrderError),
    (10002, "invalid request, please check your timestamp", AuthenticationError,
     AuthenticationError),
    (10003, "API key is invalid.", AuthenticationError, AuthenticationError),
    (10004, "error sign! origin_string[(hidden)]", AuthenticationError, AuthenticationError),
    (10005, "Permission denied, please check your API key permissions.",
     PermissionDeniedError, PermissionDeniedError),
    (10006, "Too many visits!", RateLimitError, RateLimitError),
    (10016, "Server error.", ExchangeUnavailableError, AmbiguousOrderError),
    (110001, "Order does not exist.", OrderNotFoundError, OrderNotFoundError),
    (170131, "Insufficient balance.", InsufficientFundsError, InsufficientFundsError),
    (170134, "Order price has too many decimals.", InvalidOrderError, InvalidOrderError),
    (170136, "Order quantity below the lower limit.", InvalidOrderError, InvalidOrderError),
    (170137, "Order quantity has too many decimals.", InvalidOrderError, InvalidOrderError),
    (170140, "Order value exceeded lower limit.", InvalidOrderError, InvalidOrderError),
    (170141, "Duplicate clientOrderId", InvalidOrderError, InvalidOrderError),
    (170213, "Order does not exist.", OrderNotFoundError, OrderNotFoundError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "msg", "on_read", "on_submit"), BYBIT_CASES, ids=[str(c[0]) for c in BYBIT_CASES]
)
def test_bybit_ret_code_maps_to_project_error_on_read_and_submit(
    code: int, msg: str, on_read: type[BrokerError], on_submit: type[BrokerError]
) -> None:
    exchange = ccxt.bybit()
    body = json.dumps({"retCode": code, "retMsg": msg, "result": {}, "time": 1})
    with pytest.raises(ccxt.BaseError) as raised:
        exchange.handle_errors(
            200, "OK", "http://h/v5/order/create", "POST", {}, body, json.loads(body), {}, ""
        )

    assert type(translate(raised.value, "bybit: fetch balance")) is on_read
    assert type(translate(raised.value, "bybit: submit order", "c1")) is on_submit
    assert f"(code {code})" in str(translate(raised.value, "bybit: fetch balance"))


def test_every_bybit_code_in_the_table_is_covered_by_a_case() -> None:
    assert set(BYBIT_CODES) <= {case[0] for case in BYBIT_CASES}


def test_every_code_in_the_table_is_covered_by_a_case() -> None:
    covered = {case[1] for case in BINANCE_CASES}

    assert set(BINANCE_CODES) <= covered


def test_ddos_protection_is_rate_limit_although_a_sibling_of_rate_limit_exceeded() -> None:
    assert not issubclass(ccxt.DDoSProtection, ccxt.RateLimitExceeded)

    error = translate(ccxt.DDoSProtection("bybit 429 Too Many Requests"), "bybit: submit x")

    assert type(error) is RateLimitError


@pytest.mark.parametrize(
    ("exc", "on_read", "on_submit"),
    [
        (
            ccxt.OnMaintenance("x System is under maintenance."),
            ExchangeUnavailableError,
            ExchangeUnavailableError,
        ),
        (
            ccxt.ExchangeNotAvailable("x 502 Bad Gateway"),
            ExchangeUnavailableError,
            AmbiguousOrderError,
        ),
        (ccxt.RequestTimeout("x POST http://h/order"), BrokerNetworkError, AmbiguousOrderError),
        (ccxt.NetworkError("x ECONNRESET"), BrokerNetworkError, AmbiguousOrderError),
        (ccxt.InvalidNonce("x nonce"), AuthenticationError, AuthenticationError),
        (ccxt.BadResponse("x garbled"), BadExchangeReplyError, AmbiguousOrderError),
        (ccxt.NullResponse("x empty"), BadExchangeReplyError, AmbiguousOrderError),
        (ccxt.OperationFailed("x failed"), ExchangeUnavailableError, AmbiguousOrderError),
        (ccxt.PermissionDenied("x no permission"), PermissionDeniedError, PermissionDeniedError),
        (ccxt.AccountSuspended("x suspended"), PermissionDeniedError, PermissionDeniedError),
        (ccxt.AuthenticationError("x bad key"), AuthenticationError, AuthenticationError),
        (ccxt.InsufficientFunds("x funds"), InsufficientFundsError, InsufficientFundsError),
        (ccxt.OrderNotFound("x unknown"), OrderNotFoundError, OrderNotFoundError),
        (ccxt.DuplicateOrderId("x dup"), InvalidOrderError, InvalidOrderError),
        (ccxt.BadSymbol("x symbol"), InvalidOrderError, InvalidOrderError),
        (ccxt.MarketClosed("x closed"), InvalidOrderError, InvalidOrderError),
        (ccxt.NotSupported("x nope"), FinalBrokerError, FinalBrokerError),
        (ccxt.ExchangeError("x unknown code"), FinalBrokerError, FinalBrokerError),
    ],  # fmt: skip
)
def test_ccxt_class_maps_most_specific_first(
    exc: ccxt.BaseError, on_read: type[BrokerError], on_submit: type[BrokerError]
) -> None:
    assert type(translate(exc, "bybit: fetch orders")) is on_read
    assert type(translate(exc, "bybit: submit order", "c1")) is on_submit


def test_parse_failure_inside_block_is_bad_reply_on_read_and_ambiguous_on_submit() -> None:
    with pytest.raises(BadExchangeReplyError, match="could not understand"), map_ccxt_errors(READ):
        raise TypeError("'NoneType' object is not subscriptable")
    with pytest.raises(AmbiguousOrderError) as err, map_ccxt_errors(SUBMIT, "cid-9"):
        raise KeyError("orderId")

    assert err.value.client_order_id == "cid-9"


def test_project_errors_pass_through_unchanged() -> None:
    original = KillSwitchError("daily loss")

    with pytest.raises(KillSwitchError) as err, map_ccxt_errors(SUBMIT, "c"):
        raise original

    assert err.value is original


def test_message_drops_query_strings_and_redacts_secrets() -> None:
    exc = ccxt.ExchangeNotAvailable(
        "binance GET http://h/api/v3/account?timestamp=1&signature=abcdef 500 KEY-12345 <b>x</b>"
    )

    text = str(translate(exc, READ, redact=["KEY-12345", None]))

    assert "signature" not in text and "abcdef" not in text
    assert "KEY-12345" not in text and "***" in text
    assert "<b>" not in text


def test_is_submit_accepts_an_exchange_prefix() -> None:
    assert is_submit("submit order") and is_submit("binance: submit buy market order")
    assert not is_submit("binance: look up order submitted-1")
    assert not is_submit("cancel order 1")


# ----------------------------------------------------------------------------- over HTTP
def _submit_raw(broker: CcxtBroker, call: Callable[[], object]) -> BrokerError:
    """Send straight through ccxt (past CcxtBroker's own checks) and return the mapped error."""
    broker.load_markets()
    with pytest.raises(BrokerError) as err, map_ccxt_errors("binance: submit raw order", "raw-1"):
        call()
    return err.value


def test_http_notional_filter_failure_is_final_invalid_order(
    binance_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    ex = binance_broker.exchange

    error = _submit_raw(
        binance_broker, lambda: ex.create_order("BTC/USDT", "limit", "buy", 0.0001, 100)
    )

    assert type(error) is InvalidOrderError and error.temporary is False
    assert "Filter failure: NOTIONAL" in str(error)
    assert local_binance.orders == []


def test_http_illegal_client_id_is_final_invalid_order(binance_broker: CcxtBroker) -> None:
    ex = binance_broker.exchange

    error = _submit_raw(
        binance_broker,
        lambda: ex.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": "a b"}),
    )

    assert type(error) is InvalidOrderError and "(code -1100)" in str(error)


def test_http_recv_window_too_large_is_final(
    make_binance_broker: Callable[..., CcxtBroker],
) -> None:
    broker = make_binance_broker(options={"recvWindow": 70_000})

    with pytest.raises(InvalidOrderError, match=r"code -1131"):
        broker.get_balances()


def test_http_clock_skew_is_final_authentication_error() -> None:
    def ahead() -> object:
        return utc_now() - timedelta(seconds=30)

    with LocalBinanceExchange(
        api_key="k",
        api_secret="s",
        balances={"USDT": Decimal(100)},
        clock=ahead,  # type: ignore[arg-type]
    ) as exchange:
        broker = CcxtBroker(
            BrokerConfig(kind="binance", api_key="k", api_secret="s", base_url=exchange.base_url)
        )
        with pytest.raises(
            AuthenticationError, match=r"ahead of the server's time. \(code -1021\)"
        ) as err:
            broker.get_balances()
        broker.close()

    assert err.value.temporary is False


def test_http_unknown_order_lookup_is_order_not_found(binance_broker: CcxtBroker) -> None:
    binance_broker.load_markets()

    with pytest.raises(OrderNotFoundError, match=r"code -2013"):
        binance_broker.call(
            "fetch order", lambda: binance_broker.exchange.fetch_order("999", "BTC/USDT")
        )


def test_http_wrong_key_message_has_no_secret(
    make_binance_broker: Callable[..., CcxtBroker],
) -> None:
    broker = make_binance_broker(api_key="leaky-key-123")

    with pytest.raises(AuthenticationError, match=r"code -2015") as err:
        broker.place_order(OrderRequest("BTCUSDT", OrderSide.BUY, Decimal("0.001")))

    assert "leaky-key-123" not in str(err.value)
