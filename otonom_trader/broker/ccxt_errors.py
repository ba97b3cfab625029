"""``map_ccxt_errors``: ccxt's exceptions → the project's :mod:`otonom_trader.broker.errors`.

One context manager (httpx's ``_exceptions.py`` style) wraps every ccxt call, so callers only
ever see the project's tree. ccxt's own tree, as far as it matters here::

    ccxt.BaseError
    ├── ExchangeError                   the exchange answered and refused (definite outcome)
    │   ├── AuthenticationError
    │   │   ├── PermissionDenied        → PermissionDeniedError
    │   │   └── AccountSuspended        → PermissionDeniedError
    │   │                               (rest → AuthenticationError)
    │   ├── BadRequest (BadSymbol)      → InvalidOrderError   (-1013 NOTIONAL lands here)
    │   ├── OperationRejected           → InvalidOrderError
    │   ├── InsufficientFunds           → InsufficientFundsError
    │   ├── InvalidOrder                → InvalidOrderError   ("Duplicate order sent." -2010)
    │   │   └── OrderNotFound           → OrderNotFoundError
    │   └── NotSupported, ArgumentsRequired, other codes → FinalBrokerError
    └── OperationFailed                 the outcome is unknown or the exchange is unwell
        ├── NetworkError                → BrokerNetworkError            | submit: Ambiguous
        │   ├── DDoSProtection (429/418)→ RateLimitError   (a sibling of RateLimitExceeded!)
        │   ├── RateLimitExceeded       → RateLimitError
        │   ├── ExchangeNotAvailable    → ExchangeUnavailableError      | submit: Ambiguous
        │   │   └── OnMaintenance       → ExchangeUnavailableError (definitely not executed)
        │   ├── InvalidNonce (-1021)    → AuthenticationError (clock skew: fix the clock)
        │   └── RequestTimeout          → BrokerNetworkError            | submit: Ambiguous
        │                                 (503 -1007 "execution status unknown" lands here)
        ├── BadResponse                 → BadExchangeReplyError         | submit: Ambiguous
        └── (rest: -1000/-1001/-1006)   → ExchangeUnavailableError      | submit: Ambiguous

Binance and Bybit error codes are checked *before* ccxt's class (ccxt's Binance tables are keyed
on the API host, so against a local server only its generic table applies, and a few codes there
are too coarse, e.g. Bybit's 10000 "Server Timeout" is a plain ExchangeError in ccxt): see
:data:`BINANCE_CODES` and :data:`BYBIT_CODES`. On a **submit** every outcome that might hide a
placed order becomes :class:`AmbiguousOrderError` carrying the client order id; the caller must
look the order up before sending anything again. Rate limits, maintenance and every
``ExchangeError`` are definite refusals: the order was not placed.

Messages are one line: ``binance: submit order BTC/USDT failed: <reason> (code -2010)``. Query
strings (signatures) are cut from URLs, known secrets are replaced by ``***``, and the text is
capped, so no secret reaches a log or an alert through an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import ccxt

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
    OrderNotFoundError,
    PermissionDeniedError,
    RateLimitError,
)

#: Secrets shorter than this are not searched for in messages (they would match ordinary words).
MIN_SECRET_LENGTH = 8

#: Operation names that start with this word are order submits (see ``map_ccxt_errors``).
SUBMIT = "submit"

#: What "might the order exist?" means for each Binance code that an order submit can return.
#: ``"ambiguous"`` codes become ``AmbiguousOrderError`` on a submit and the given class on reads.
BINANCE_CODES: dict[int, tuple[type[BrokerError], bool]] = {
    # code: (error class, ambiguous on submit)
    -1000: (ExchangeUnavailableError, True),  # UNKNOWN error while processing
    -1001: (ExchangeUnavailableError, True),  # DISCONNECTED: internal error
    -1002: (AuthenticationError, False),  # UNAUTHORIZED
    -1003: (RateLimitError, False),  # TOO_MANY_REQUESTS (request weight)
    -1006: (ExchangeUnavailableError, True),  # UNEXPECTED_RESP: execution status unknown
    -1007: (BrokerNetworkError, True),  # TIMEOUT: send status unknown, execution status unknown
    -1008: (ExchangeUnavailableError, False),  # SERVER_BUSY: request rejected, not executed
    -1013: (InvalidOrderError, False),  # filter failure (LOT_SIZE, PRICE_FILTER, NOTIONAL …)
    -1015: (RateLimitError, False),  # TOO_MANY_ORDERS
    -1016: (ExchangeUnavailableError, False),  # SERVICE_SHUTTING_DOWN
    -1021: (AuthenticationError, False),  # INVALID_TIMESTAMP: outside recvWindow (clock skew)
    -1022: (AuthenticationError, False),  # INVALID_SIGNATURE
    -1100: (InvalidOrderError, False),  # ILLEGAL_CHARS
    -1101: (InvalidOrderError, False),  # TOO_MANY_PARAMETERS
    -1102: (InvalidOrderError, False),  # MANDATORY_PARAM_EMPTY_OR_MALFORMED
    -1103: (InvalidOrderError, False),  # UNKNOWN_PARAM
    -1104: (InvalidOrderError, False),  # UNREAD_PARAMETERS
    -1105: (InvalidOrderError, False),  # PARAM_EMPTY
    -1106: (InvalidOrderError, False),  # PARAM_NOT_REQUIRED
    -1111: (InvalidOrderError, False),  # BAD_PRECISION
    -1112: (InvalidOrderError, False),  # NO_DEPTH: no orders on book (ccxt: OperationFailed)
    -1114: (InvalidOrderError, False),  # TIF_NOT_REQUIRED
    -1115: (InvalidOrderError, False),  # INVALID_TIF
    -1116: (InvalidOrderError, False),  # INVALID_ORDER_TYPE
    -1117: (InvalidOrderError, False),  # INVALID_SIDE
    -1120: (InvalidOrderError, False),  # BAD_INTERVAL
    -1121: (InvalidOrderError, False),  # BAD_SYMBOL
    -1130: (InvalidOrderError, False),  # INVALID_PARAMETER
    -1131: (InvalidOrderError, False),  # BAD_RECV_WINDOW
    -2010: (InvalidOrderError, False),  # NEW_ORDER_REJECTED (balance: see the message check)
    -2011: (OrderNotFoundError, False),  # CANCEL_REJECTED: "Unknown order sent."
    -2013: (OrderNotFoundError, False),  # NO_SUCH_ORDER: "Order does not exist."
    -2014: (AuthenticationError, False),  # BAD_API_KEY_FMT
    -2015: (AuthenticationError, False),  # REJECTED_MBX_KEY: invalid key, IP or permissions
}

#: The same for Bybit's ``retCode`` (Bybit answers HTTP 200 with the code in the envelope).
BYBIT_CODES: dict[int, tuple[type[BrokerError], bool]] = {
    10000: (BrokerNetworkError, True),  # "Server Timeout": outcome unknown (ccxt: ExchangeError)
    10001: (InvalidOrderError, False),  # parameter error
    10002: (AuthenticationError, False),  # timestamp outside recv_window (clock skew)
    10003: (AuthenticationError, False),  # API key invalid
    10004: (AuthenticationError, False),  # signature error
    10005: (PermissionDeniedError, False),  # permission denied for this key
    10006: (RateLimitError, False),  # too many visits
    10016: (ExchangeUnavailableError, True),  # server error: outcome unknown
    110001: (OrderNotFoundError, False),  # order does not exist
    170131: (InsufficientFundsError, False),  # insufficient balance
    170134: (InvalidOrderError, False),  # price has too many decimals
    170136: (InvalidOrderError, False),  # quantity below / above the limits
    170137: (InvalidOrderError, False),  # quantity has too many decimals
    170140: (InvalidOrderError, False),  # order value below the lower limit
    170141: (InvalidOrderError, False),  # duplicate clientOrderId (orderLinkId)
    170213: (OrderNotFoundError, False),  # order does not exist (cancel)
}

_CODES_BY_EXCHANGE: dict[str, dict[int, tuple[type[BrokerError], bool]]] = {
    "binance": BINANCE_CODES,
    "bybit": BYBIT_CODES,
}

# Messages that refine a code: -2010 says *why* in its text.
_BINANCE_MESSAGES: dict[str, type[BrokerError]] = {
    "Account has insufficient balance for requested action.": InsufficientFundsError,
    "This account may not place or cancel orders.": PermissionDeniedError,
    "Rest API trading is not enabled.": PermissionDeniedError,
}

# (ccxt class, project class, ambiguous on submit) — most specific first: the first
# ``isinstance`` match wins, so a subclass must come before its parent.
_CCXT_CLASSES: tuple[tuple[type[Exception], type[BrokerError], bool], ...] = (
    (ccxt.OrderNotFound, OrderNotFoundError, False),
    (ccxt.InsufficientFunds, InsufficientFundsError, False),
    (ccxt.PermissionDenied, PermissionDeniedError, False),
    (ccxt.AccountSuspended, PermissionDeniedError, False),
    (ccxt.AuthenticationError, AuthenticationError, False),
    (ccxt.InvalidOrder, InvalidOrderError, False),
    (ccxt.BadRequest, InvalidOrderError, False),
    (ccxt.OperationRejected, InvalidOrderError, False),
    (ccxt.ExchangeError, FinalBrokerError, False),
    (ccxt.OnMaintenance, ExchangeUnavailableError, False),
    (ccxt.DDoSProtection, RateLimitError, False),
    (ccxt.RateLimitExceeded, RateLimitError, False),
    (ccxt.InvalidNonce, AuthenticationError, False),
    (ccxt.RequestTimeout, BrokerNetworkError, True),
    (ccxt.ExchangeNotAvailable, ExchangeUnavailableError, True),
    (ccxt.NetworkError, BrokerNetworkError, True),
    (ccxt.BadResponse, BadExchangeReplyError, True),
    (ccxt.OperationFailed, ExchangeUnavailableError, True),
)

# ccxt parses replies with plain Python; a garbled or empty reply surfaces as one of these.
_PARSE_FAILURES = (TypeError, KeyError, ValueError, AttributeError, IndexError)

_MAX_REASON = 240
_CODE_RE = re.compile(r'"code"\s*:\s*"?(-?\d+)"?')
_MSG_RE = re.compile(r'"msg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_RETMSG_RE = re.compile(r'"retMsg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_RETCODE_RE = re.compile(r'"retCode"\s*:\s*"?(-?\d+)"?')
_SUBMIT_RE = re.compile(rf"^([a-z0-9_.]+:\s*)?{SUBMIT}\b")
_HTML_TAG_RE = re.compile(r"<[^>]{0,200}>")
_URL_QUERY_RE = re.compile(r"(https?://[^\s?]+)\?\S*")


def is_submit(operation: str) -> bool:
    """True when ``operation`` names an order submit: it starts with ``"submit"``, optionally
    after an exchange prefix (``"binance: submit buy market order BTC/USDT"``)."""
    return _SUBMIT_RE.match(operation.strip().lower()) is not None


@contextmanager
def map_ccxt_errors(
    operation: str,
    client_order_id: str | None = None,
    *,
    redact: Iterable[str | None] = (),
) -> Iterator[None]:
    """Translate any ccxt exception raised inside the block into a ``BrokerError``.

    ``operation`` is a short phrase for the message (``"fetch balance"``, ``"cancel order 42"``);
    an operation that starts with ``"submit"`` (after an optional ``"<exchange id>: "``) is an
    order submit, where every failure that might
    hide a placed order becomes :class:`AmbiguousOrderError` with ``client_order_id`` attached.
    ``redact`` lists secrets (API key, secret) that must never appear in the message.

    The original exception stays reachable as ``__cause__`` for debugging, but its text (which
    may contain a signed URL) is not copied verbatim: the message is rebuilt and sanitised.
    """
    try:
        yield
    except BrokerError:
        raise
    except ccxt.BaseError as exc:
        raise translate(exc, operation, client_order_id, redact=redact) from exc
    except _PARSE_FAILURES as exc:
        # Only ccxt calls run inside the block, so this is ccxt failing to read a reply.
        submit = is_submit(operation)
        reason = f"could not understand the exchange's reply ({type(exc).__name__})"
        message = _line(operation, reason, client_order_id if submit else None)
        if submit:
            raise AmbiguousOrderError(message, client_order_id) from exc
        raise BadExchangeReplyError(message) from exc


def translate(
    exc: Exception,
    operation: str,
    client_order_id: str | None = None,
    *,
    redact: Iterable[str | None] = (),
) -> BrokerError:
    """The ``BrokerError`` for one ccxt exception (what ``map_ccxt_errors`` raises)."""
    text = str(exc)
    code, message = _code_and_message(text)
    error_class, ambiguous = _classify(exc, code, message)
    submit = is_submit(operation)
    reason = _reason(exc, text, code, message, redact)
    if submit and ambiguous:
        reason += "; the order may exist: look it up by client order id before resending"
        return AmbiguousOrderError(_line(operation, reason, client_order_id), client_order_id)
    return error_class(_line(operation, reason, client_order_id if submit else None))


def _classify(
    exc: Exception, code: int | None, message: str | None
) -> tuple[type[BrokerError], bool]:
    if message is not None and message in _BINANCE_MESSAGES:
        return _BINANCE_MESSAGES[message], False
    # 429/418 first: ccxt raises DDoSProtection for them before it reads any code.
    if isinstance(exc, ccxt.DDoSProtection):
        return RateLimitError, False
    codes = _CODES_BY_EXCHANGE.get(_exchange_id(exc), {})
    if code is not None and code in codes:
        return codes[code]
    for ccxt_class, project_class, ambiguous in _CCXT_CLASSES:
        if isinstance(exc, ccxt_class):
            return project_class, ambiguous
    # An unknown ccxt.BaseError: nothing says the order was refused, so assume it may exist.
    return BrokerNetworkError, True


def _exchange_id(exc: Exception) -> str:
    """ccxt starts its messages with the exchange id (``"binance {...}"``)."""
    return str(exc).split(" ", 1)[0]


def _code_and_message(text: str) -> tuple[int | None, str | None]:
    """Pull ``code``/``msg`` (Binance) or ``retCode``/``retMsg`` (Bybit) out of ccxt's text."""
    brace = text.find("{")
    if brace >= 0:
        try:
            body = json.loads(text[brace:])
        except ValueError:
            body = None
        if isinstance(body, dict):
            raw_code = body.get("code", body.get("retCode"))
            raw_msg = body.get("msg", body.get("retMsg"))
            code = _int_or_none(raw_code)
            return code, str(raw_msg) if raw_msg is not None else None
    code_match = _CODE_RE.search(text) or _RETCODE_RE.search(text)
    msg_match = _MSG_RE.search(text) or _RETMSG_RE.search(text)
    return (
        _int_or_none(code_match.group(1)) if code_match else None,
        msg_match.group(1) if msg_match else None,
    )


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _reason(
    exc: Exception,
    text: str,
    code: int | None,
    message: str | None,
    redact: Iterable[str | None],
) -> str:
    kind = type(exc).__name__
    if message:
        reason = f"{message} (code {code})" if code is not None else message
    else:
        # ccxt's own text: "<id> <METHOD> <url> <status> <reason> <body>" or just "<id> …".
        reason = _HTML_TAG_RE.sub(" ", _URL_QUERY_RE.sub(r"\1", text))
        parts = reason.split(" ", 1)
        reason = parts[1] if len(parts) == 2 and parts[0].isidentifier() else reason
        reason = " ".join(reason.split()) or "no details"
    reason = f"{reason} [{kind}]"
    for secret in redact:
        # Very short "secrets" (test values) would shred the text; real keys are long.
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            reason = reason.replace(secret, "***")
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 1] + "…"
    return reason


def _line(operation: str, reason: str, client_order_id: str | None) -> str:
    where = f" (client order id {client_order_id})" if client_order_id else ""
    return f"{operation} failed{where}: {reason}"
