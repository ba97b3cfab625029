"""Benchmark: one cycle over 1, 10 and 100 symbols against the local Binance exchange, with
latency added to every request, without and with an order for every symbol.

For each mode (LIVE: the exchange account; SHADOW: the paper book beside it, the same orders) and
size it runs cycles through ``TradingDaemon.run_once()`` (candles from the same exchange) and
prints, per cycle:

* time (median of the measured cycles),
* requests and request weight the exchange counted (Binance's published weights, as the local
  exchange charges them and reports them in ``X-MBX-USED-WEIGHT-1M``),
* the floor: one candle request per symbol (weight 2), one account read (20) and one order per
  trading symbol (1) — with the cycle's concurrency, about ``requests / workers`` round trips,
* weight / floor (target ≤ 1.25) and time against the targets (100 symbols at 100 ms:
  no-trade ≤ 1.5 s, every symbol trading ≤ 3 s),

and the same 100-symbol trading cycle with ``execution.io_workers=1`` (everything in turn), for
the ratio the concurrency buys.

    .venv/bin/python bench/bench_symbols.py [--latency-ms 100] [--sizes 1,10,100] [--runs 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from otonom_trader.broker.ccxt_broker import clear_markets_cache  # noqa: E402
from otonom_trader.daemon import ExecutionMode, TradingDaemon  # noqa: E402
from otonom_trader.local_exchange import LocalBinanceExchange  # noqa: E402

SHIPPED = ["BTC/USDT", "ETH/USDT", "ADA/USDT", "LTC/USDT", "XRP/USDT", "DOGE/USDT", "TRX/USDT"]

STRATEGY = """\
# Benchmark strategy: {what}
name: bench_symbols
version: "1.0"
symbols: [{symbols}]
timeframe: 1h
entry:
  - {{indicator: rsi, period: 14, below: {entry_below}}}
exit:
  - {{indicator: rsi, period: 14, above: 0}}
sizing: {{mode: fixed_quote, value: 20, max_position_quote: 40}}
"""


def symbols_for(count: int) -> list[str]:
    """The shipped markets first, then listed ones (``S001/USDT`` …) up to ``count``."""
    extra = [f"S{i:03d}/USDT" for i in range(1, max(0, count - len(SHIPPED)) + 1)]
    return (SHIPPED + extra)[:count]


@dataclass
class CycleCost:
    seconds: float
    requests: int
    weight: int
    orders: int


def _serve_exchange(conn: Connection, listed: list[str]) -> None:
    """The local exchange in a process of its own (as a real venue is: its work does not take
    the bench's interpreter lock), driven through ``conn``."""
    exchange = LocalBinanceExchange(balances={"USDT": Decimal(1_000_000)}).start()
    exchange.list_markets(listed, like="XRP/USDT", price=Decimal("0.6"))
    conn.send(exchange.base_url)
    while True:
        command, argument = conn.recv()
        if command == "latency":
            exchange.latency_s = float(argument)
            conn.send(None)
        elif command == "counts":
            conn.send((len(exchange.requests), exchange.weight_total, len(exchange.orders)))
        else:
            exchange.stop()
            conn.send(None)
            return


class ExchangeProcess:
    """Start, steer and stop the local exchange process."""

    def __init__(self, listed: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_exchange, args=(child, listed))
        self._process.start()
        self.base_url: str = self._conn.recv()

    def _ask(self, command: str, argument: object = None) -> object:
        self._conn.send((command, argument))
        return self._conn.recv()

    def set_latency(self, seconds: float) -> None:
        self._ask("latency", seconds)

    def counts(self) -> tuple[int, int, int]:
        """``(requests, weight, orders)`` the exchange has seen so far."""
        counts = self._ask("counts")
        assert isinstance(counts, tuple)
        return int(counts[0]), int(counts[1]), int(counts[2])

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(timeout=10)


class Bench:
    """One local exchange and one database; a warm-up cycle that trades nothing (markets, the
    database's first use), then cycles of the strategy measured."""

    def __init__(self, count: int, workers: int, trading: bool, mode: ExecutionMode) -> None:
        self.mode = mode
        self.dir = Path(tempfile.mkdtemp(prefix="bench-symbols-"))
        os.environ["OTONOM_HOME"] = str(self.dir)
        os.environ["BINANCE_TESTNET_API_KEY"] = "test-key"
        os.environ["BINANCE_TESTNET_API_SECRET"] = "test-secret"
        self.symbols = symbols_for(count)
        self.offset = timedelta(0)
        self.exchange = ExchangeProcess([s for s in self.symbols if s not in SHIPPED])
        clear_markets_cache()
        self._load_markets()
        warm_up = self._daemon(workers, trading=False)
        warm_up.run_once()
        warm_up.close()
        self.daemon = self._daemon(workers, trading)

    def _daemon(self, workers: int, trading: bool) -> TradingDaemon:
        strategy = self.dir / f"strategy-{'trading' if trading else 'quiet'}.yaml"
        strategy.write_text(
            STRATEGY.format(
                what="every symbol trades" if trading else "no symbol trades",
                symbols=", ".join(self.symbols),
                entry_below=100 if trading else 0,
            )
        )
        url = self.exchange.base_url
        return TradingDaemon(
            clock=lambda: datetime.now(UTC) + self.offset,
            db_path=self.dir / "trader.db",
            strategy_path=strategy,
            mode=self.mode,
            overrides=[
                "alerts.enabled=false",
                "mode.paper_book_in_live=false",
                "broker=binance_testnet",
                f"broker.base_url={url}",
                "data=exchange",
                f"data.exchange_base_url={url}",
                f"execution.io_workers={workers}",
                "guardrails=off",
            ],
        )

    def _load_markets(self) -> None:
        """List the venue's markets once, as the first cycle of a deployment does (the disk
        cache then serves every later process, and the config check)."""
        from otonom_trader.broker.ccxt_broker import CcxtBroker
        from otonom_trader.broker.config import BrokerConfig

        url = self.exchange.base_url
        config = BrokerConfig(kind="binance", testnet=True, base_url=url, api_key="k" * 16)
        broker = CcxtBroker(config)
        broker.load_markets()
        broker.close()

    def cycle(self, latency_s: float) -> CycleCost:
        self.exchange.set_latency(latency_s)
        requests, weight, orders = self.exchange.counts()
        started = time.perf_counter()
        summary = self.daemon.run_once()
        seconds = time.perf_counter() - started
        self.exchange.set_latency(0.0)
        if summary.status != "succeeded":
            raise SystemExit(f"cycle {summary.status}: {summary.notes}")
        requests_after, weight_after, orders_after = self.exchange.counts()
        # The venue's order-rate window (100 per 10 s) is the gate's to respect; cycles a
        # strategy's timeframe apart never meet it, so the bench moves the daemon's clock on.
        self.offset += timedelta(seconds=11)
        return CycleCost(
            seconds, requests_after - requests, weight_after - weight, orders_after - orders
        )

    def close(self) -> None:
        self.daemon.close()
        self.exchange.stop()


def measure(
    count: int, latency_s: float, runs: int, trading: bool, workers: int, mode: ExecutionMode
) -> CycleCost:
    """Median cost of ``runs`` cycles. Trading cycles come in pairs on a fresh account — every
    symbol bought, then every symbol sold — because an intent is sent once per candle and side."""
    costs: list[CycleCost] = []
    while len(costs) < runs:
        bench = Bench(count, workers, trading, mode)
        try:
            for _ in range(2 if trading else runs):
                costs.append(bench.cycle(latency_s))
        finally:
            bench.close()
    return CycleCost(
        statistics.median(c.seconds for c in costs),
        round(statistics.median(c.requests for c in costs)),
        round(statistics.median(c.weight for c in costs)),
        round(statistics.median(c.orders for c in costs)),
    )


def floor_weight(count: int, trading: bool) -> int:
    return 2 * count + 20 + (count if trading else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--modes", default="live,shadow")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = [ExecutionMode(m) for m in args.modes.split(",")]
    print(
        f"Cycles on the local Binance exchange (its own process), {args.latency_ms:g} ms added "
        f"per request, {args.workers} requests in flight at most, median of {args.runs}\n"
    )
    header = (
        f"{'mode':<6} {'symbols':>7} {'cycle':<8} {'time s':>7} {'requests':>8} {'weight':>6} "
        f"{'floor':>5} {'w/floor':>7} {'orders':>6}"
    )
    print(header)
    print("-" * len(header))
    results: dict[tuple[ExecutionMode, int, bool], CycleCost] = {}
    for mode in modes:
        for count in sizes:
            for trading in (False, True):
                cost = measure(count, latency, args.runs, trading, args.workers, mode)
                results[(mode, count, trading)] = cost
                floor = floor_weight(count, trading)
                print(
                    f"{mode.value:<6} {count:>7} {'trading' if trading else 'no-trade':<8} "
                    f"{cost.seconds:>7.2f} {cost.requests:>8} {cost.weight:>6} {floor:>5} "
                    f"{cost.weight / floor:>7.2f} {cost.orders:>6}",
                    flush=True,
                )
    biggest, mode = max(sizes), modes[0]
    sequential = measure(biggest, latency, 2, True, 1, mode)
    parallel = results[(mode, biggest, True)]
    print(
        f"\n{mode.value}, {biggest} symbols trading, everything in turn (io_workers=1): "
        f"{sequential.seconds:.2f} s; {args.workers} in flight: {parallel.seconds:.2f} s "
        f"({sequential.seconds / parallel.seconds:.1f}x)"
    )
    if biggest == 100 and args.latency_ms == 100:
        for mode in modes:
            no_trade, trade = results[(mode, 100, False)], results[(mode, 100, True)]
            print(
                f"targets, {mode.value}: no-trade {no_trade.seconds:.2f} s (≤ 1.5); trading "
                f"{trade.seconds:.2f} s (≤ 3); weight {trade.weight} "
                f"(≤ {int(1.25 * floor_weight(100, True))})"
            )


if __name__ == "__main__":
    main()
