"""SHADOW against Binance's API (the local exchange), from the command line a user types:
``python flows/daemon.py mode=shadow broker=binance_testnet …`` then ``otonom-trader
shadow-report`` shows the pairs and writes the plot."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.local_exchange import LocalBinanceExchange

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY, SECRET = "local-test-key-0123456789", "local-test-secret-0123456789"


@pytest.fixture
def exchange() -> Iterator[LocalBinanceExchange]:
    with LocalBinanceExchange(
        api_key=KEY,
        api_secret=SECRET,
        balances={"USDT": Decimal("10000")},
        prices={"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")},
    ) as ex:
        yield ex


@pytest.mark.prefect
@pytest.mark.slow
def test_shadow_cycle_on_binance_testnet_config_then_shadow_report(
    prefect_harness: None, exchange: LocalBinanceExchange, tmp_path: Path
) -> None:
    env = dict(os.environ)
    env.update(
        OTONOM_HOME=str(tmp_path / "home"),
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        BINANCE_TESTNET_API_KEY=KEY,
        BINANCE_TESTNET_API_SECRET=SECRET,
        COLUMNS="200",  # a wide terminal, so table cells are not ellipsized
    )
    overrides = [
        "mode=shadow",
        "broker=binance_testnet",
        f"broker.base_url={exchange.base_url}",
        "data=exchange",
        f"data.exchange_base_url={exchange.base_url}",
        f"strategy.path={FIXTURES / 'always_buy_v1.0.yaml'}",
        "alerts.enabled=false",
    ]

    cycle = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "flows" / "daemon.py"), *overrides],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )

    assert cycle.returncode == 0, cycle.stdout[-3000:] + cycle.stderr[-3000:]
    assert f"binance (testnet @ {exchange.base_url})" in cycle.stdout
    assert "SHADOW" in cycle.stdout
    placed = [o for o in exchange.orders if o.client_order_id.startswith("ot-")]
    assert len(placed) == 2  # one BUY per symbol reached the exchange, each exactly once
    assert KEY not in cycle.stdout + cycle.stderr and SECRET not in cycle.stdout + cycle.stderr

    plot = tmp_path / "equity.png"
    report = subprocess.run(
        [sys.executable, "-m", "otonom_trader.cli", "shadow-report", "--plot", str(plot)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )

    assert report.returncode == 0, report.stdout + report.stderr
    assert "BTC/USDT" in report.stdout and "ETH/USDT" in report.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
