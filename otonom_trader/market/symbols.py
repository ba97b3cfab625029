"""Symbol spelling: unified ``BTC/USDT`` (ccxt, strategies) and exchange ``BTCUSDT`` (the guide).

Every public entry point accepts either; internally, books and rules use the unified form.
"""

from __future__ import annotations

# Longest first, so "FDUSD" is tried before "USD".
KNOWN_QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "EUR", "TRY", "BTC", "ETH", "BNB", "USD")


def to_unified(symbol: str) -> str:
    """``BTCUSDT`` → ``BTC/USDT``; a unified symbol is returned unchanged (upper-cased)."""
    text = symbol.strip().upper()
    if "/" in text:
        return text
    for quote in KNOWN_QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return f"{text[: -len(quote)]}/{quote}"
    raise ValueError(
        f"cannot tell base and quote apart in symbol {symbol!r}; write it as BASE/QUOTE"
    )


def to_exchange_id(symbol: str) -> str:
    """``BTC/USDT`` → ``BTCUSDT`` (Binance's and Bybit's spelling)."""
    return to_unified(symbol).split(":")[0].replace("/", "")


def split(symbol: str) -> tuple[str, str]:
    """``BTC/USDT`` → ``("BTC", "USDT")``."""
    base, quote = to_unified(symbol).split(":")[0].split("/")
    return base, quote
