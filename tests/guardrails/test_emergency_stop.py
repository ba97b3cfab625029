"""The emergency stop cannot miss: ``otonom-trader kill-switch trip`` with no scope halts every
account — SHADOW and LIVE cycles afterwards send no new order to the exchange, also on an account
first used after the trip — and ``reset`` with no scope lets them trade again."""

from __future__ import annotations

from pathlib import Path

import pytest

from otonom_trader.cli import main
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")


def _cycle(db: Path, url: str, mode: ExecutionMode, label: str = "main") -> list[str]:
    daemon = TradingDaemon(
        db_path=db,
        strategy_path=FIXTURES / "always_buy_v1.0.yaml",
        mode=mode,
        overrides=[
            "alerts.enabled=false",
            "broker=binance_testnet",
            f"broker.base_url={url}",
            f"broker.label={label}",
            "data=exchange",
            f"data.exchange_base_url={url}",
        ],
    )
    try:
        summary = daemon.run_once()
    finally:
        daemon.close()
    return [o.error or "" for o in summary.orders if o.book == daemon.context.account.book]


def test_trip_without_arguments_halts_shadow_and_live_on_every_account(
    tmp_path: Path,
    keys: None,
    local_binance: LocalBinanceExchange,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "trader.db"
    # Arrange: a SHADOW account that has traded (its book exists and holds what it bought)
    _cycle(db, local_binance.base_url, ExecutionMode.SHADOW)
    sent_before = len(local_binance.orders)
    assert sent_before == 2

    # Act: the emergency stop, no mode, no book, no account
    assert main(["--db", str(db), "kill-switch", "trip", "--reason", "STOP"]) == 0
    said = capsys.readouterr().out
    shadow_errors = _cycle(db, local_binance.base_url, ExecutionMode.SHADOW)  # wants to sell
    # ... and an account first used after the trip (it wants to buy)
    live_errors = _cycle(db, local_binance.base_url, ExecutionMode.LIVE, label="live-bot")

    # Assert: nothing new reached the exchange; every broker leg refused by the kill-switch
    assert len(local_binance.orders) == sent_before
    assert shadow_errors and all(e.startswith("KILL-SWITCH") for e in shadow_errors)
    assert live_errors and all(e.startswith("KILL-SWITCH") for e in live_errors)
    assert "every book" in said and "STOP" in shadow_errors[0]

    # The reset with no scope lets the accounts trade again (the refused intents were never
    # sent, so they may still go out on this candle).
    assert main(["--db", str(db), "kill-switch", "reset", "--reason", "over"]) == 0
    assert _cycle(db, local_binance.base_url, ExecutionMode.LIVE, label="live-bot") == ["", ""]
    assert len(local_binance.orders) == sent_before + 2
