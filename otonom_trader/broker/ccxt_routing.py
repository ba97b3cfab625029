"""Point a real ccxt exchange object at a local stand-in server (tests and offline drills).

ccxt builds every request URL from ``exchange.urls['api'][<api name>]`` (a string, or for some
exchanges a dict of strings). Replacing only the spot keys is not enough: an unmapped key still
points at the real host and ``load_markets`` or a balance call would quietly leave 127.0.0.1.
:func:`route_ccxt_to` therefore rewrites *every* URL, keeping its path suffix
(``https://api.binance.com/sapi/v1`` → ``http://127.0.0.1:8765/sapi/v1``), and refuses to leave
any value that still names a remote host.

The option dicts make ``load_markets`` touch only endpoints the local exchanges implement:

* Binance: ``fetchCurrencies``/``fetchMargins`` off (both are extra ``/sapi`` calls) and spot
  markets only, so loading markets is a single ``GET /api/v3/exchangeInfo``.
* Bybit: spot markets only, so loading markets is ``GET /v5/market/instruments-info?category=spot``
  (plus ``GET /v5/asset/coin/query-info`` when keys are set, which the local Bybit serves).
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

import ccxt

#: Options for ``ccxt.binance`` against :class:`otonom_trader.local_exchange.LocalBinanceExchange`.
LOCAL_BINANCE_OPTIONS: dict[str, Any] = {
    "fetchCurrencies": False,
    "fetchMargins": False,
    "fetchMarkets": {"types": ["spot"]},
    "defaultType": "spot",
}

#: Options for ``ccxt.bybit`` against :class:`otonom_trader.local_exchange.LocalBybitExchange`.
LOCAL_BYBIT_OPTIONS: dict[str, Any] = {
    "fetchMarkets": {"types": ["spot"]},
    "defaultType": "spot",
}

# ``set_sandbox_mode`` swaps ``urls['api']`` with ``urls['test']`` (and keeps the old one in
# ``apiBackup``); routing those too means a later sandbox switch cannot bring a real host back.
_URL_TABLES = ("api", "test", "apiBackup", "demotrading")


def route_ccxt_to(exchange: ccxt.Exchange, base_url: str) -> None:
    """Rewrite every API URL of ``exchange`` to ``base_url`` with the same path suffix.

    ``base_url`` is the local server's root, e.g. ``http://127.0.0.1:8765`` (a trailing slash
    is ignored). Values of ``exchange.urls['api']`` may be strings or nested dicts; both are
    rewritten recursively. Raises ``ValueError`` if ``base_url`` is not an ``http(s)://host:port``
    address or if any URL would still point at another host afterwards.
    """
    root = base_url.rstrip("/")
    parts = urlsplit(root)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"route_ccxt_to: base_url {base_url!r} is not an http(s)://host:port URL")
    urls = exchange.urls
    for table in _URL_TABLES:
        if table in urls and isinstance(urls[table], (dict, str)):
            urls[table] = _rewrite(copy.deepcopy(urls[table]), root)
    leftovers = [u for u in _iter_urls(urls.get("api")) if urlsplit(u).netloc != parts.netloc]
    if leftovers:
        raise ValueError(f"route_ccxt_to: URLs still point elsewhere: {leftovers}")


def _rewrite(value: Any, root: str) -> Any:
    if isinstance(value, str):
        # ccxt templates like ``https://api.{hostname}`` have no path after the host.
        path = urlsplit(value).path if "://" in value else ""
        return root + path.rstrip("/")
    if isinstance(value, dict):
        return {key: _rewrite(inner, root) for key, inner in value.items()}
    return value


def _iter_urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [u for inner in value.values() for u in _iter_urls(inner)]
    return []
