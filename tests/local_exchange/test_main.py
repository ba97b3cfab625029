"""``python -m otonom_trader.local_exchange``: a foreground server for offline drills."""

from __future__ import annotations

import subprocess
import sys

import ccxt
import pytest

from otonom_trader.broker.ccxt_routing import LOCAL_BINANCE_OPTIONS, route_ccxt_to
from otonom_trader.local_exchange.__main__ import main


def test_module_prints_base_url_and_serves_ccxt_until_terminated() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otonom_trader.local_exchange",
            "binance",
            "--port",
            "0",
            "--api-key",
            "drill-key",
            "--api-secret",
            "drill-secret",
            "--price",
            "BTC/USDT=42000",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        base_url = first_line.rsplit(" ", 1)[-1].strip()
        client = ccxt.binance(
            {
                "apiKey": "drill-key",
                "secret": "drill-secret",
                "timeout": 3000,
                "options": dict(LOCAL_BINANCE_OPTIONS),
            }
        )
        route_ccxt_to(client, base_url)

        ticker = client.fetch_ticker("BTC/USDT")
        balance = client.fetch_balance()
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert first_line.startswith("local binance exchange listening on http://127.0.0.1:")
    assert ticker["last"] == 42000.0
    assert balance["USDT"]["free"] == 10000.0
    assert "drill-secret" not in first_line


def test_bad_balance_argument_names_the_option() -> None:
    with pytest.raises(SystemExit, match="--balance 'USDT' is not NAME=NUMBER"):
        main(["binance", "--port", "0", "--balance", "USDT"])


def test_unknown_market_price_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bybit", "--port", "0", "--price", "FOO/BAR=1"])

    assert code == 2
    assert "unknown market 'FOO/BAR'" in capsys.readouterr().err
