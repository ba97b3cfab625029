"""Promotion fixtures: a strategy file of the test's own (so it can be edited), a backtest's
metrics.json writer, a ``promote`` runner on a simulated clock, and a local Binance exchange
standing in for a *production* account (``broker=binance``, testnet off)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from otonom_trader.cli import build_parser
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.promotion.cli import run_promote
from otonom_trader.testkit.clock import ManualClock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY, SECRET = "test-key", "test-secret"


@pytest.fixture
def strategy(tmp_path: Path) -> Path:
    """The always-trading test strategy, copied so a test may edit it (a new version)."""
    path = tmp_path / "strategies" / "always_trade_v1.0.yaml"
    path.parent.mkdir()
    shutil.copyfile(FIXTURES / "always_buy_v1.0.yaml", path)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_metrics(directory: Path, strategy: Path, **changes: Any) -> Path:
    """A backtest's ``DIR/metrics.json`` for ``strategy`` (as the backtest writes it), with
    ``changes`` applied; ``out_of_sample=None`` leaves the walk-forward metrics out."""
    oos = {"profit_factor": 1.4, "trades": 12, "total_return": 0.04, "max_drawdown": 0.08}
    metrics: dict[str, Any] = {
        "strategy_name": "always_trade",
        "strategy_version": "1.0",
        "strategy_hash": sha256_of(strategy),
        "span_start": "2025-01-01T00:00:00+00:00",
        "span_end": "2026-02-05T00:00:00+00:00",
        "span_days": 400.0,
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "timeframe": "1h",
        "total_return": 0.18,
        "cagr": 0.16,
        "sharpe": 1.3,
        "sortino": 1.9,
        "max_drawdown": 0.12,
        "max_drawdown_duration_days": 21.5,
        "trades": 64,
        "win_rate": 0.55,
        "profit_factor": 1.6,
        "exposure": 0.4,
        "fees_paid": 81.2,
        "kill_switch_halts": 0,
        "out_of_sample": oos,
    }
    metrics.update(changes)
    if metrics["out_of_sample"] is None:
        del metrics["out_of_sample"]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "metrics.json"
    path.write_text(json.dumps(metrics, indent=2))
    return path


@dataclass
class Promoter:
    """Runs ``otonom-trader --db DB -o … promote ACTION …`` at the clock's time, as the CLI
    parses it, for ``strategy``; returns the exit status and what it printed (80 columns)."""

    db: Path
    clock: ManualClock
    strategy: Path
    overrides: list[str] = field(default_factory=list)

    def __call__(self, action: str, *argv: str, extra: tuple[str, ...] = ()) -> tuple[int, str]:
        line = ["--db", str(self.db)]
        for item in (*self.overrides, *extra):
            line += ["-o", item]
        args: argparse.Namespace = build_parser().parse_args(
            [*line, "promote", action, "--strategy", str(self.strategy), *argv]
        )
        out = io.StringIO()
        console = Console(file=out, width=80, highlight=False, color_system=None)
        code = run_promote(args, now=self.clock(), console=console)
        return code, out.getvalue()


@pytest.fixture
def make_promoter() -> Callable[..., Promoter]:
    return Promoter


@pytest.fixture
def clock() -> ManualClock:
    """The current hour (+30 s): the local exchange serves candles up to the real time, so a
    cycle at the clock's time sees fresh closed candles. Tests move it back and forth."""
    return ManualClock(datetime.now(UTC).replace(minute=0, second=30, microsecond=0))


@pytest.fixture
def exchange_keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys both local exchanges accept, for the testnet and the production configs."""
    for prefix in ("BINANCE_TESTNET", "BINANCE"):
        monkeypatch.setenv(f"{prefix}_API_KEY", KEY)
        monkeypatch.setenv(f"{prefix}_API_SECRET", SECRET)


@pytest.fixture
def production_exchange() -> Iterator[LocalBinanceExchange]:
    """A second local Binance account (10 000 USDT), configured as production below."""
    with LocalBinanceExchange(
        api_key=KEY,
        api_secret=SECRET,
        balances={"USDT": Decimal("10000")},
        prices={"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")},
    ) as exchange:
        yield exchange


def on_venue(exchange: LocalBinanceExchange, broker: str) -> list[str]:
    """Overrides for trading on ``exchange`` (candles from it too) as ``broker``."""
    url = exchange.base_url
    return [
        f"broker={broker}",
        f"broker.base_url={url}",
        "data=exchange",
        f"data.exchange_base_url={url}",
    ]


def on_production(exchange: LocalBinanceExchange) -> list[str]:
    """``exchange`` as a production account (``broker=binance``: testnet off)."""
    return on_venue(exchange, "binance")


def on_testnet(exchange: LocalBinanceExchange) -> list[str]:
    """``exchange`` as a testnet account."""
    return on_venue(exchange, "binance_testnet")
