"""The venue's own market list: loaded once per process, cached on disk with an expiry.

An exchange's market list (Binance's ``exchangeInfo``: weight 20, a few hundred KB) changes
rarely. The first process to load it writes it under ``$OTONOM_HOME/cache/markets/``; every later
process — the next cycle, the candle source beside the broker, the config check — reads that
file while it is younger than ``MARKETS_TTL_S`` instead of asking the exchange again. Markets the
shipped list does not know become known to the rules (``market.rules.rules_for``) once loaded, so
a strategy may trade any market of its venue.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from otonom_trader.home import otonom_home

log = logging.getLogger(__name__)

#: How long a cached market list is used before it is loaded again (a day).
MARKETS_TTL_S = 24 * 3600.0


def markets_cache_file(kind: str, base_url: str | None, testnet: bool) -> Path:
    """Where the market list of ``kind`` at ``base_url`` (or its testnet / production API) is
    cached."""
    where = base_url or ("testnet" if testnet else "production")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", where).strip("_")
    return otonom_home() / "cache" / "markets" / f"{kind}-{slug}.json"


def read_cached_markets(
    kind: str,
    base_url: str | None,
    testnet: bool,
    *,
    max_age_s: float = MARKETS_TTL_S,
    now: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(markets, currencies)`` from the disk cache, or ``None`` when absent, expired or
    unreadable (then the caller loads them from the exchange)."""
    path = markets_cache_file(kind, base_url, testnet)
    try:
        data = json.loads(path.read_text())
        saved_at = float(data["saved_at"])
        markets, currencies = data["markets"], data.get("currencies") or {}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if (now if now is not None else time.time()) - saved_at > max_age_s:
        return None
    if not isinstance(markets, dict) or not isinstance(currencies, dict):
        return None
    return markets, currencies


def write_cached_markets(
    kind: str,
    base_url: str | None,
    testnet: bool,
    markets: dict[str, Any],
    currencies: dict[str, Any] | None,
) -> None:
    """Cache a freshly loaded market list (atomically: a reader never sees half a file). A
    cache that cannot be written is logged and skipped: it only saves a request."""
    path = markets_cache_file(kind, base_url, testnet)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        payload = {"saved_at": time.time(), "markets": markets, "currencies": currencies or {}}
        tmp.write_text(json.dumps(payload, default=str))
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError) as exc:
        log.warning("market list of %s not cached on disk: %s", kind, exc)


def forget_cached_markets() -> None:
    """Delete every cached market list under ``$OTONOM_HOME`` (the next load asks the venue)."""
    folder = otonom_home() / "cache" / "markets"
    for path in folder.glob("*.json") if folder.is_dir() else ():
        path.unlink(missing_ok=True)


def register_venue_markets(markets: dict[str, Any]) -> int:
    """Make every spot market of a loaded list known to ``rules_for`` (the shipped definitions
    keep precedence for the markets they describe). Returns how many were added."""
    from otonom_trader.market.rules import MarketRules, register_venue_rules

    rules = []
    for market in markets.values():
        if not isinstance(market, dict) or not market.get("spot", True):
            continue
        try:
            rules.append(MarketRules.from_ccxt_market(market))
        except (KeyError, TypeError, ValueError, ArithmeticError):
            continue  # a market ccxt describes incompletely cannot be traded here
    return register_venue_rules(rules)
