"""Benchmark: what reconciliation costs a cycle, in exchange requests and milliseconds.

A LIVE account on the local Binance exchange (real ``ccxt.binance`` over HTTP) holding two traded
assets; times ``Reconciler.reconcile`` (balances + open orders, the trades only on a drift) and
counts the requests it sends, with no drift and with a drift (a manual trade on the exchange).

    .venv/bin/python bench/bench_reconcile.py            # 50 rounds
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange

STRATEGY = PROJECT_ROOT / "tests" / "fixtures" / "always_buy_v1.0.yaml"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args(argv)
    os.environ.update(BINANCE_TESTNET_API_KEY="k", BINANCE_TESTNET_API_SECRET="s")
    table = Table(title=f"reconciliation per cycle (medians of {args.rounds})")
    for column in ("case", "requests", "ms"):
        table.add_column(column, justify="left" if column == "case" else "right")
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalBinanceExchange(
            api_key="k",
            api_secret="s",
            balances={"USDT": Decimal(10_000)},
            prices={"BTC/USDT": Decimal(50_000), "ETH/USDT": Decimal(3_000)},
        ) as exchange,
    ):
        os.environ["OTONOM_HOME"] = tmp
        daemon = TradingDaemon(
            db_path=Path(tmp) / "bench.db",
            strategy_path=STRATEGY,
            mode=ExecutionMode.LIVE,
            overrides=[
                "alerts.enabled=false",
                "mode.paper_book_in_live=false",
                "broker=binance_testnet",
                f"broker.base_url={exchange.base_url}",
                "data=exchange",
                f"data.exchange_base_url={exchange.base_url}",
            ],
        )
        daemon.run_once()  # the account trades BTC and ETH
        ctx = daemon.context
        leg = ctx.legs[0]
        for case in ("no drift", "drift (manual trade, adopted)"):
            samples, requests = [], []
            for _ in range(args.rounds):
                if case.startswith("drift"):
                    from otonom_trader.broker.types import OrderRequest, OrderSide

                    leg.gate.raw_broker.place_order(  # type: ignore[attr-defined]
                        OrderRequest("ETH/USDT", OrderSide.SELL, Decimal("0.002"))
                    )
                before = len(exchange.requests)
                started = time.perf_counter()
                ctx.reconciler.reconcile(leg)
                samples.append((time.perf_counter() - started) * 1000)
                requests.append(len(exchange.requests) - before)
            table.add_row(
                case, f"{statistics.median(requests):g}", f"{statistics.median(samples):.1f}"
            )
        daemon.close()
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
