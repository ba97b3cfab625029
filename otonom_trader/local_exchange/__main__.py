"""Run a local exchange in the foreground for offline drills.

::

    python -m otonom_trader.local_exchange binance --port 8765 \\
        --api-key k --api-secret s --balance USDT=10000 --price BTC/USDT=50000

prints the base URL (point ccxt at it with ``route_ccxt_to``) and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from otonom_trader.local_exchange.binance import LocalBinanceExchange
from otonom_trader.local_exchange.bybit import LocalBybitExchange
from otonom_trader.local_exchange.server import LocalExchangeServer


def _amounts(pairs: Sequence[str], option: str) -> dict[str, Decimal]:
    result: dict[str, Decimal] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep or not name:
                raise InvalidOperation
            result[name] = Decimal(value)
        except InvalidOperation:
            raise SystemExit(f"error: {option} {pair!r} is not NAME=NUMBER") from None
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m otonom_trader.local_exchange``."""
    parser = argparse.ArgumentParser(
        prog="python -m otonom_trader.local_exchange",
        description="Serve a local Binance-compatible (or Bybit v5) exchange on 127.0.0.1.",
    )
    parser.add_argument("exchange", choices=["binance", "bybit"])
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--api-secret", default="test-secret")
    parser.add_argument(
        "--balance",
        action="append",
        default=[],
        metavar="ASSET=AMOUNT",
        help="starting free balance (repeatable); default USDT=10000",
    )
    parser.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="SYMBOL=PRICE",
        help="feed price, e.g. BTC/USDT=50000 (repeatable)",
    )
    return parser


def main(argv: Sequence[str] | None = None, stop: threading.Event | None = None) -> int:
    """Start the exchange, print its base URL, serve until Ctrl-C (or ``stop`` is set)."""
    args = build_parser().parse_args(argv)
    balances = _amounts(args.balance, "--balance") or {"USDT": Decimal("10000")}
    prices = _amounts(args.price, "--price")
    exchange_class: type[LocalBinanceExchange] | type[LocalBybitExchange] = (
        LocalBinanceExchange if args.exchange == "binance" else LocalBybitExchange
    )
    try:
        exchange: LocalExchangeServer = exchange_class(
            api_key=args.api_key,
            api_secret=args.api_secret,
            balances=balances,
            prices=prices,
            host=args.host,
            port=args.port,
        )
        exchange.start()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"local {args.exchange} exchange listening on {exchange.base_url}", flush=True)
    print(
        "  route ccxt to it: otonom_trader.broker.ccxt_routing.route_ccxt_to(client, "
        f"{exchange.base_url!r}); Ctrl-C stops",
        flush=True,
    )
    waiter = stop or threading.Event()
    try:
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        exchange.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
