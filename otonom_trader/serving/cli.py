"""``otonom-trader serve [KEY=VALUE ...]``: the daemon on its candle schedule, until SIGTERM.

    otonom-trader serve                          # PAPER, a cycle after every 1h candle close
    otonom-trader serve mode=shadow broker=binance_testnet
    otonom-trader serve --interval 300 mode=paper    # every 5 minutes instead of per candle

Overrides may also be given with the global ``-o KEY=VALUE``; ``--db`` becomes ``db.url``. Every
input is checked as for one cycle before Prefect is started (a mistake: one line, status 2).
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``serve`` command to the top-level parser."""
    serve = subparsers.add_parser(
        "serve",
        help="run a cycle after every candle close (and the watchdog) until SIGTERM",
        description=(
            "Serve the daemon with Prefect: a cycle shortly after each candle close of the "
            "strategy's timeframe, the watchdog every 10 minutes, until SIGTERM (which lets "
            "the cycle in flight finish). Needs PREFECT_API_URL for a long-lived server."
        ),
    )
    serve.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a cycle every SECONDS instead of after each candle close",
    )
    serve.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="Hydra overrides")
    serve.set_defaults(func=handle_serve)


def handle_serve(args: argparse.Namespace) -> int:
    """Validate every input of a cycle, then serve until stopped."""
    from otonom_trader.config.errors import ConfigError
    from otonom_trader.config.validation import validate_cycle
    from otonom_trader.serving.serve import serve_checked

    overrides = [*args.overrides, *args.settings]
    if args.db is not None:
        overrides.append(f"db.url={args.db}")
    if args.interval is not None and not 1 <= args.interval <= 366 * 86_400:
        raise ConfigError(
            f"must be within [1, 31622400] seconds, got {args.interval}", "--interval"
        )
    validate_cycle(overrides)
    return serve_checked(overrides, interval_seconds=args.interval)
