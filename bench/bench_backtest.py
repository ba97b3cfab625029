"""Benchmark: backtest speed, against replaying the same candles through ``run_once()``.

Prints

1. bar-steps per second of the backtest (a bar-step = one symbol on one closed candle) for the
   baseline strategy on two symbols, and of PAPER ``TradingDaemon.run_once()`` cycles replaying
   the same candles (``data=csv``, a simulated clock, SQLite in a temporary directory), and the
   ratio (target ≥ 500×);
2. one year of 5-minute candles for ten symbols (≈ 1.05 M bar-steps) through the backtest.

    .venv/bin/python bench/bench_backtest.py [--bars 1500] [--replay-bars 1500] [--skip-million]

The ten symbols of part 2 are the seven markets whose rules ship with the project and three
more (DOT, SOL, AVAX) given ADA/USDT's lot and tick rules, for this benchmark only; the candles are
the seeded synthetic ones. Both parts use the baseline's rules (``strategies/baseline_v1.0.yaml``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from otonom_trader.backtest.history import load_history, write_candles_csv  # noqa: E402
from otonom_trader.backtest.runner import BacktestRequest, prepare  # noqa: E402
from otonom_trader.backtest.simulator import Backtest  # noqa: E402
from otonom_trader.config.validation import compose_validated  # noqa: E402
from otonom_trader.daemon import ExecutionMode, TradingDaemon  # noqa: E402
from otonom_trader.market.candles import Candle, timeframe_seconds  # noqa: E402
from otonom_trader.market.rules import default_market_rules, rules_for  # noqa: E402
from otonom_trader.market.synthetic import SyntheticMarketData  # noqa: E402
from otonom_trader.strategy.model import load_strategy  # noqa: E402
from otonom_trader.testkit.clock import ManualClock  # noqa: E402

BASELINE = ROOT / "strategies" / "baseline_v1.0.yaml"
END = datetime(2026, 1, 1, tzinfo=UTC)
TEN = (
    "BTC/USDT",
    "ETH/USDT",
    "LTC/USDT",
    "ADA/USDT",
    "XRP/USDT",
    "DOGE/USDT",
    "TRX/USDT",
    "DOT/USDT",
    "SOL/USDT",
    "AVAX/USDT",
)


def _baseline_variant(tmp: Path, symbols: tuple[str, ...], timeframe: str) -> Path:
    text = BASELINE.read_text()
    listed = "symbols:\n" + "".join(f"  - {s}\n" for s in symbols)
    text = text.replace("symbols:\n  - BTC/USDT\n  - ETH/USDT\n", listed)
    text = text.replace("timeframe: 1h ", f"timeframe: {timeframe} ")
    path = tmp / f"baseline_{len(symbols)}_{timeframe}.yaml"
    path.write_text(text)
    return path


def _synthetic(symbols: tuple[str, ...], timeframe: str, bars: int) -> dict[str, list[Candle]]:
    source = SyntheticMarketData()
    return {s: list(source.fetch(s, timeframe, bars, END).candles) for s in symbols}


def _replay_run_once(tmp: Path, strategy: Path, csv_path: Path, candles: list[Candle]) -> float:
    """Seconds for one PAPER cycle at each candle's close."""
    step = timedelta(seconds=timeframe_seconds("1h"))
    clock = ManualClock(candles[0].open_time + step)
    daemon = TradingDaemon(
        db_path=tmp / "replay.db",
        strategy_path=strategy,
        mode=ExecutionMode.PAPER,
        overrides=["alerts.enabled=false", "data=csv", f"data.csv_path={csv_path}"],
        clock=clock,
    )
    try:
        started = time.perf_counter()
        for candle in candles:
            clock.now = candle.open_time + step
            daemon.run_once()
        return time.perf_counter() - started
    finally:
        daemon.close()


def _compare(
    tmp: Path, label: str, strategy: Path, history: dict[str, list[Candle]], replay_bars: int
) -> None:
    csv_path = tmp / f"candles_{label.split()[0]}.csv"
    write_candles_csv(history, csv_path)
    started = time.perf_counter()
    app, loaded = prepare(BacktestRequest(strategy, ("alerts.enabled=false",)))
    candles = load_history(loaded, app.data, csv_path=csv_path)
    loaded_s = time.perf_counter() - started
    result = Backtest(app, loaded, candles).run()
    backtest_s = time.perf_counter() - started
    replay_s_only = backtest_s - loaded_s
    steps = result.bar_steps
    replay_candles = history["BTC/USDT"][-replay_bars:]
    replay_s = _replay_run_once(tmp, strategy, csv_path, replay_candles)
    replay_rate = len(replay_candles) * len(history) / replay_s
    print(f"   {label}: {steps:,} bar-steps, {len(result.fills)} fills")
    print(
        f"     run_once replay: {replay_rate:>10,.0f} bar-steps/s "
        f"({1000 * replay_s / len(replay_candles):.1f} ms/cycle, {len(replay_candles)} cycles)"
    )
    for what, seconds in (
        ("backtest, with loading", backtest_s),
        ("backtest, bars only", replay_s_only),
    ):
        rate = steps / seconds
        ratio = rate / replay_rate
        verdict = "meets" if ratio >= 500 else "misses"
        print(
            f"     {what:22} {rate:>10,.0f} bar-steps/s = {ratio:>5,.0f}x run_once ({verdict} 500x)"
        )


def part_one(tmp: Path, bars: int, replay_bars: int) -> None:
    symbols = ("BTC/USDT", "ETH/USDT")
    history = _synthetic(symbols, "1h", bars)
    print(f"1) {len(symbols)} symbols, 1h, {bars} candles each (synthetic), SQLite")
    _compare(tmp, "baseline", _baseline_variant(tmp, symbols, "1h"), history, replay_bars)
    # The same candles with an entry that never holds (RSI below 0): what stepping through bars
    # costs when no order is sent — the backtest's floor, without the order path.
    quiet = _baseline_variant(tmp, symbols, "1h")
    quiet.write_text(quiet.read_text().replace("below: 70 ", "below: 0 "))
    _compare(tmp, "baseline with an entry that never holds", quiet, history, replay_bars)


def part_two(tmp: Path, days: int) -> None:
    rules = default_market_rules()
    ada = rules_for("ADA/USDT")
    for symbol in TEN:
        if symbol not in rules:
            base = symbol.split("/")[0]
            rules[symbol] = dataclasses.replace(ada, symbol=symbol, base=base)
    bars = days * 24 * 12
    started = time.perf_counter()
    history = _synthetic(TEN, "5m", bars)
    generated_s = time.perf_counter() - started
    strategy = load_strategy(_baseline_variant(tmp, TEN, "5m"))
    _raw, app = compose_validated(["alerts.enabled=false"])
    started, cpu = time.perf_counter(), time.process_time()
    result = Backtest(app, strategy, history).run()
    run_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    print(f"2) baseline, {len(TEN)} symbols, 5m, {days} days ({bars:,} candles each, synthetic)")
    print(f"   candles generated in {generated_s:.1f} s")
    print(
        f"   backtest: {result.bar_steps:,} bar-steps in {run_s:.1f} s = "
        f"{result.bar_steps / run_s:,.0f} bar-steps/s ({len(result.fills):,} fills, "
        f"{result.kill_switch_halts} kill-switch halts)"
    )
    print(
        f"   process CPU time {cpu_s:.1f} s = {result.bar_steps / cpu_s:,.0f} bar-steps per CPU-s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1500, help="1h candles per symbol, part 1")
    parser.add_argument(
        "--replay-bars", type=int, default=1500, help="cycles replayed through run_once()"
    )
    parser.add_argument("--skip-million", action="store_true", help="skip part 2")
    parser.add_argument("--days", type=int, default=365, help="days of 5m candles, part 2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.bars > 0:
            part_one(Path(tmp), args.bars, min(args.replay_bars, args.bars))
        if not args.skip_million:
            part_two(Path(tmp), args.days)


if __name__ == "__main__":
    main()
