"""audit_api_key against the local Binance: withdraw-capable keys refused, 404 → skipped."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from otonom_trader.broker.ccxt_broker import CcxtBroker
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.broker.errors import (
    AuthenticationError,
    ExchangeUnavailableError,
    PermissionDeniedError,
)
from otonom_trader.broker.key_audit import KeyAuditResult, audit_api_key
from otonom_trader.config.errors import ConfigError
from otonom_trader.local_exchange import LocalBinanceExchange

RESTRICTIONS = "GET /sapi/v1/account/apiRestrictions"


@pytest.fixture
def live_broker(make_binance_broker: Callable[..., CcxtBroker]) -> CcxtBroker:
    """A broker configured like production (``testnet: false``), aimed at the local exchange."""
    return make_binance_broker(testnet=False)


def test_trade_only_key_then_checked_and_accepted(
    live_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    result = audit_api_key(live_broker)

    assert result == KeyAuditResult(
        checked=True,
        can_withdraw=False,
        can_trade=True,
        message=f"{live_broker.name}: API key checked: no withdrawal permission",
    )
    assert local_binance.request_paths() == [RESTRICTIONS]


def test_withdraw_capable_key_then_refused_with_permission_denied(
    live_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    local_binance.can_withdraw = True

    with pytest.raises(PermissionDeniedError, match="can WITHDRAW funds; refusing") as err:
        audit_api_key(live_broker)

    assert "allow_withdraw_permission" in str(err.value)
    assert err.value.temporary is False


def test_withdraw_capable_key_allowed_when_config_says_so(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    local_binance.can_withdraw = True
    broker = make_binance_broker(testnet=False, allow_withdraw_permission=True)

    result = audit_api_key(broker)

    assert (result.checked, result.can_withdraw, result.can_trade) == (True, True, True)
    assert "allowed because broker.allow_withdraw_permission is true" in result.message


def test_endpoint_missing_404_then_skipped_and_says_so(
    live_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    local_binance.restrictions_endpoint_enabled = False
    local_binance.can_withdraw = True  # unknown to us: the endpoint does not answer

    result = audit_api_key(live_broker)

    assert (result.checked, result.can_withdraw, result.can_trade) == (False, None, None)
    assert "check skipped" in result.message and "HTTP 404" in result.message
    assert "NOT verified" in result.message


def test_testnet_broker_then_skipped_because_ccxt_has_no_sapi_there(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    broker = make_binance_broker(testnet=True)

    result = audit_api_key(broker)

    assert result.checked is False
    assert "no GET /sapi/v1/account/apiRestrictions on this venue (testnet)" in result.message
    assert local_binance.request_paths() == []


def test_endpoint_5xx_then_error_propagates_not_skipped(
    live_broker: CcxtBroker, local_binance: LocalBinanceExchange
) -> None:
    local_binance.inject_fault("http_503", path="/sapi/v1/account/apiRestrictions")

    with pytest.raises(ExchangeUnavailableError):
        audit_api_key(live_broker)


def test_refused_key_then_authentication_error(
    make_binance_broker: Callable[..., CcxtBroker],
) -> None:
    broker = make_binance_broker(testnet=False, api_key="not-our-key")

    with pytest.raises(AuthenticationError, match="code -2015"):
        audit_api_key(broker)


def test_no_keys_then_skipped_without_a_request(
    make_binance_broker: Callable[..., CcxtBroker], local_binance: LocalBinanceExchange
) -> None:
    broker = make_binance_broker(testnet=False, api_key=None, api_secret=None)

    result = audit_api_key(broker)

    assert result.checked is False and "no API key" in result.message
    assert local_binance.request_paths() == []


def test_exchange_without_testnet_then_config_error_names_testnet() -> None:
    with pytest.raises(ConfigError, match=r"^broker\.testnet: kraken has no testnet in ccxt"):
        CcxtBroker(BrokerConfig(kind="kraken", testnet=True))


def test_exchange_without_known_endpoint_then_skipped() -> None:
    broker = CcxtBroker(
        BrokerConfig(kind="kraken", testnet=False, api_key="k" * 16, api_secret="czM=")
    )

    result = audit_api_key(broker)

    assert result.checked is False
    assert "no permission endpoint is known for kraken" in result.message
