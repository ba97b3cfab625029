"""API-key audit: refuse to trade real money with a key that can withdraw funds.

A trading daemon needs to read balances and place orders; it never needs to move funds off
the exchange. A leaked key with withdrawal rights loses the account, one without them loses at
most some trades. So in LIVE (and SHADOW on a production exchange) the daemon calls
:func:`audit_api_key` at start-up, and a withdraw-capable key is refused with
:class:`PermissionDeniedError` unless ``broker.allow_withdraw_permission: true`` is set.

Where the key's permissions come from:

* Binance: ``GET /sapi/v1/account/apiRestrictions`` (``enableWithdrawals``,
  ``enableSpotAndMarginTrading``), through ccxt's implicit ``sapiGetAccountApiRestrictions``.
* Bybit: ``GET /v5/user/query-api`` (``readOnly``, ``permissions.Wallet`` contains
  ``Withdraw``, ``permissions.Spot`` contains ``SpotTrade``), through
  ``privateGetV5UserQueryApi``.

Testnets do not serve these endpoints (HTTP 404): the result then says the check was skipped
(``checked=False``) instead of pretending the key is safe. Other exchanges: skipped likewise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ccxt

from otonom_trader.broker.ccxt_broker import CcxtBroker
from otonom_trader.broker.errors import BadExchangeReplyError, BrokerError, PermissionDeniedError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyAuditResult:
    """What the exchange says the API key may do.

    ``checked`` is False when the exchange offers no way to ask (testnet, unsupported
    exchange, no key); ``can_withdraw``/``can_trade`` are then None. ``message`` is one line
    for the start-up log.
    """

    checked: bool
    can_withdraw: bool | None
    can_trade: bool | None
    message: str


def audit_api_key(broker: CcxtBroker) -> KeyAuditResult:
    """Ask the exchange what ``broker``'s key may do; refuse a key that can withdraw.

    Raises :class:`PermissionDeniedError` for a withdraw-capable key unless the broker's
    config sets ``allow_withdraw_permission``; other broker errors (network, rate limit, a
    refused key) propagate, since an unchecked key must not silently pass.
    """
    kind = broker.config.kind
    if not broker.has_keys:
        return KeyAuditResult(
            False, None, None, f"{broker.name}: key check skipped: no API key is configured"
        )
    if kind == "binance":
        path = "GET /sapi/v1/account/apiRestrictions"
        reply = _ask(broker, path, lambda: broker.exchange.sapiGetAccountApiRestrictions())
        if isinstance(reply, str):
            return _skipped(broker, reply)
        can_withdraw = _flag(reply, "enableWithdrawals", broker, path)
        can_trade = _flag(reply, "enableSpotAndMarginTrading", broker, path)
    elif kind == "bybit":
        path = "GET /v5/user/query-api"
        reply = _ask(broker, path, lambda: broker.exchange.privateGetV5UserQueryApi())
        if isinstance(reply, str):
            return _skipped(broker, reply)
        can_withdraw, can_trade = _bybit_permissions(reply, broker, path)
    else:
        return KeyAuditResult(
            False,
            None,
            None,
            f"{broker.name}: key check skipped: no permission endpoint is known for {kind}",
        )
    return _verdict(broker, can_withdraw, can_trade)


def _ask(broker: CcxtBroker, path: str, fn: Any) -> dict[str, Any] | str:
    """The endpoint's JSON, or why it cannot be asked here (HTTP 404, or ccxt has no URL for
    it, as for Binance's /sapi on the testnet)."""
    try:
        reply = broker.call(f"audit API key ({path})", fn)
    except BrokerError as exc:
        if broker.last_http_status == 404 and not isinstance(exc.__cause__, ccxt.NotSupported):
            return f"{path} does not exist here (HTTP 404, as on testnets)"
        if isinstance(exc.__cause__, ccxt.NotSupported):
            return f"ccxt offers no {path} on this venue (testnet)"
        raise
    if not isinstance(reply, dict):
        raise BadExchangeReplyError(f"{broker.config.kind}: {path} answered a non-object")
    return reply


def _skipped(broker: CcxtBroker, reason: str) -> KeyAuditResult:
    message = (
        f"{broker.name}: key permission check skipped: {reason}; withdrawal rights were NOT "
        "verified"
    )
    log.warning("%s", message)
    return KeyAuditResult(False, None, None, message)


def _flag(reply: dict[str, Any], key: str, broker: CcxtBroker, path: str) -> bool:
    value = reply.get(key)
    if isinstance(value, bool):
        return value
    raise BadExchangeReplyError(f"{broker.config.kind}: {path} has no boolean {key!r}")


def _bybit_permissions(reply: dict[str, Any], broker: CcxtBroker, path: str) -> tuple[bool, bool]:
    result = reply.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("permissions"), dict):
        raise BadExchangeReplyError(f"{broker.config.kind}: {path} has no result.permissions")
    permissions: dict[str, Any] = result["permissions"]
    wallet = [str(p) for p in permissions.get("Wallet") or []]
    spot = [str(p) for p in permissions.get("Spot") or []]
    read_only = str(result.get("readOnly", "0")) == "1"
    return "Withdraw" in wallet, (not read_only) and "SpotTrade" in spot


def _verdict(broker: CcxtBroker, can_withdraw: bool, can_trade: bool) -> KeyAuditResult:
    trade_note = "" if can_trade else "; WARNING: the key cannot trade spot"
    if can_withdraw:
        if not broker.config.allow_withdraw_permission:
            raise PermissionDeniedError(
                f"{broker.name}: the API key can WITHDRAW funds; refusing to trade with it. "
                "Create a key without withdrawal permission, or set "
                "broker.allow_withdraw_permission: true to accept the risk"
            )
        message = (
            f"{broker.name}: the API key can withdraw funds; allowed because "
            f"broker.allow_withdraw_permission is true{trade_note}"
        )
        log.warning("%s", message)
        return KeyAuditResult(True, True, can_trade, message)
    message = f"{broker.name}: API key checked: no withdrawal permission{trade_note}"
    (log.info if can_trade else log.warning)("%s", message)
    return KeyAuditResult(True, False, can_trade, message)
