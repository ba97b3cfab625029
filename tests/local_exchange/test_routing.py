"""route_ccxt_to: every ccxt URL points at the local server afterwards."""

from __future__ import annotations

import ccxt
import pytest

from otonom_trader.broker.ccxt_routing import route_ccxt_to


def _all_urls(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [u for inner in value.values() for u in _all_urls(inner)]
    return []


@pytest.mark.parametrize("exchange_class", [ccxt.binance, ccxt.bybit])
def test_route_maps_every_api_url_to_the_local_base(exchange_class: type) -> None:
    exchange = exchange_class()

    route_ccxt_to(exchange, "http://127.0.0.1:8765/")

    urls = _all_urls(exchange.urls["api"])
    assert urls
    assert all(u.startswith("http://127.0.0.1:8765") for u in urls)


def test_route_keeps_the_path_suffix() -> None:
    exchange = ccxt.binance()

    route_ccxt_to(exchange, "http://127.0.0.1:8765")

    assert exchange.urls["api"]["public"] == "http://127.0.0.1:8765/api/v3"
    assert exchange.urls["api"]["sapi"] == "http://127.0.0.1:8765/sapi/v1"


def test_route_survives_a_later_sandbox_switch() -> None:
    exchange = ccxt.binance()
    route_ccxt_to(exchange, "http://127.0.0.1:8765")

    exchange.set_sandbox_mode(True)

    assert all(u.startswith("http://127.0.0.1:8765") for u in _all_urls(exchange.urls["api"]))


def test_route_refuses_a_base_url_without_scheme() -> None:
    with pytest.raises(ValueError, match="base_url '127.0.0.1:8765'"):
        route_ccxt_to(ccxt.binance(), "127.0.0.1:8765")
