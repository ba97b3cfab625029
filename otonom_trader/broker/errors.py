"""The project's broker error hierarchy.

Every failure that crosses the ``Broker`` interface is one of these, so callers decide on the
*kind* of failure (may I retry? did the order perhaps go through?) without knowing which exchange
or library produced it. ``map_ccxt_errors()`` in :mod:`otonom_trader.broker.ccxt_errors`
translates ccxt's exceptions into this tree, most specific first.

::

    BrokerError                         any broker failure
    ├── TemporaryBrokerError            retrying later may succeed (reads only: never blind-resend)
    │   ├── BrokerNetworkError          connection refused / reset, DNS, TLS
    │   ├── RateLimitError              HTTP 429 / 418, exchange throttling
    │   ├── ExchangeUnavailableError    maintenance, HTTP 5xx with a definite "not executed"
    │   └── AmbiguousOrderError         the order MAY have been placed (timeout, 5xx, -1007, lost
    │                                   reply): look it up by client order id before resending
    └── FinalBrokerError                the same request will fail again; do not retry
        ├── AuthenticationError         bad key or signature, IP not whitelisted, clock skew
        ├── PermissionDeniedError       key lacks a permission, or has a forbidden one (withdraw)
        ├── InsufficientFundsError      not enough balance for the order
        ├── InvalidOrderError           rejected by the exchange's rules (lot, tick, notional…)
        │   └── BelowMinimumNotionalError   refused before sending: amount × price < min notional
        ├── OrderNotFoundError          cancel / lookup of an order the exchange does not know
        ├── BadExchangeReplyError       the exchange answered something we cannot parse
        └── KillSwitchError             a guardrail halted trading; message starts "KILL-SWITCH"

``KillSwitchError`` is final on purpose: a halted broker stays halted until the guardrails clear
or a person resets them, so retrying the same order is never right.
"""

from __future__ import annotations


class BrokerError(Exception):
    """Base of every broker failure. ``str(err)`` is one human-readable line."""

    #: Whether the same request may succeed if tried again later.
    temporary: bool = False


class TemporaryBrokerError(BrokerError):
    """A failure that may go away by itself (network, rate limit, ambiguous outcome)."""

    temporary = True


class BrokerNetworkError(TemporaryBrokerError):
    """The exchange could not be reached, or the connection dropped."""


class RateLimitError(TemporaryBrokerError):
    """The exchange throttled us (HTTP 429, or 418 when an IP is banned for a while)."""


class ExchangeUnavailableError(TemporaryBrokerError):
    """The exchange is in maintenance or answered 5xx for a request with no side effect."""


class AmbiguousOrderError(TemporaryBrokerError):
    """A submit whose outcome is unknown: the order may or may not exist on the exchange.

    The only safe reaction is to look the order up by its client order id (with backoff) before
    anything is sent again. ``client_order_id`` names the order to look for.
    """

    def __init__(self, message: str, client_order_id: str | None = None) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class FinalBrokerError(BrokerError):
    """A failure that will repeat if the same request is sent again."""


class AuthenticationError(FinalBrokerError):
    """The API key, secret, signature or timestamp was refused."""


class PermissionDeniedError(FinalBrokerError):
    """The key lacks a needed permission, or has one we refuse to trade with (withdrawals)."""


class InsufficientFundsError(FinalBrokerError):
    """The account does not hold enough of the asset the order spends."""


class InvalidOrderError(FinalBrokerError):
    """The order breaks an exchange rule (lot size, tick size, notional, symbol, order type)."""


class BelowMinimumNotionalError(InvalidOrderError):
    """The order's value is below the market's minimum notional; refused before sending."""


class OrderNotFoundError(FinalBrokerError):
    """The exchange does not know the order (cancel or lookup of an unknown id)."""


class BadExchangeReplyError(FinalBrokerError):
    """The exchange's reply could not be understood; nothing is assumed from it."""


class KillSwitchError(FinalBrokerError):
    """Trading is halted by the kill-switch. The message starts with ``KILL-SWITCH``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"KILL-SWITCH active: {reason}")
        self.reason = reason
