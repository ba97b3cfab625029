"""Brokers: the interface, domain values, errors, and the factory (the guide's section 1).

from otonom_trader.broker import (
    Broker, OrderRequest, OrderSide, OrderType, OrderFill, Position, Balance,
    BrokerError, build_broker, GuardedBroker, GuardrailConfig,
)
"""

from otonom_trader.broker.base import Broker
from otonom_trader.broker.config import BrokerConfig, SimExchangeConfig
from otonom_trader.broker.errors import (
    AmbiguousOrderError,
    AuthenticationError,
    BadExchangeReplyError,
    BelowMinimumNotionalError,
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
    TemporaryBrokerError,
)
from otonom_trader.broker.factory import build_broker, load_broker_config
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

__all__ = [
    "AmbiguousOrderError",
    "AuthenticationError",
    "BadExchangeReplyError",
    "Balance",
    "BelowMinimumNotionalError",
    "Broker",
    "BrokerConfig",
    "BrokerError",
    "BrokerNetworkError",
    "CcxtBroker",
    "ExchangeUnavailableError",
    "FinalBrokerError",
    "GuardedBroker",
    "GuardrailConfig",
    "HaltPolicy",
    "InsufficientFundsError",
    "InvalidOrderError",
    "KeyAuditResult",
    "KillSwitchError",
    "OrderFill",
    "OrderNotFoundError",
    "OrderRequest",
    "OrderSide",
    "OrderStatus",
    "OrderType",
    "PermissionDeniedError",
    "Position",
    "RateLimitError",
    "RetryPolicy",
    "SimExchangeConfig",
    "TemporaryBrokerError",
    "Trade",
    "audit_api_key",
    "build_broker",
    "load_broker_config",
    "to_decimal",
]


def __getattr__(name: str) -> object:
    # GuardedBroker sits on top of the guardrails, which import this package's types: load it
    # on first use so that importing either side first works.
    if name == "GuardedBroker":
        from otonom_trader.broker.guarded import GuardedBroker

        return GuardedBroker
    if name in ("CcxtBroker", "RetryPolicy"):
        from otonom_trader.broker import ccxt_broker

        return getattr(ccxt_broker, name)
    if name in ("audit_api_key", "KeyAuditResult"):
        from otonom_trader.broker import key_audit

        return getattr(key_audit, name)
    if name in ("GuardrailConfig", "HaltPolicy"):
        from otonom_trader.guardrails import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
