"""LIVE checks the API key's permissions before trading and refuses one that can withdraw."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.broker.errors import PermissionDeniedError
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.testkit.promotion import force_live

KEY, SECRET = "audit-key-0123456789", "audit-secret-0123456789"
BASELINE = Path(__file__).resolve().parents[2] / "strategies" / "baseline_v1.0.yaml"


@pytest.fixture
def exchange(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBinanceExchange]:
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    with LocalBinanceExchange(
        api_key=KEY, api_secret=SECRET, balances={"USDT": Decimal(1000)}
    ) as ex:
        yield ex


def _live(tmp_path: Path, exchange: LocalBinanceExchange, *extra: str) -> TradingDaemon:
    # A local exchange with testnet off is a production account: LIVE needs a promoted version.
    force_live(tmp_path / "t.db", BASELINE, reason="test: the key audit, not the promotion")
    overrides = [
        "broker=binance",
        f"broker.base_url={exchange.base_url}",
        "alerts.enabled=false",
        *extra,
    ]
    return TradingDaemon(
        db_path=tmp_path / "t.db",
        strategy_path=BASELINE,
        mode=ExecutionMode.LIVE,
        overrides=overrides,
    )


def test_live_refuses_a_key_that_can_withdraw(
    tmp_path: Path, exchange: LocalBinanceExchange
) -> None:
    exchange.can_withdraw = True

    with pytest.raises(PermissionDeniedError, match="withdraw"):
        _live(tmp_path, exchange).run_once()

    assert exchange.orders == []


def test_live_trades_with_a_key_that_cannot_withdraw(
    tmp_path: Path, exchange: LocalBinanceExchange
) -> None:
    summary = _live(tmp_path, exchange).run_once()

    assert summary.status == "succeeded"
    assert any("API-key audit" in note and "withdraw" in note for note in summary.notes)


def test_withdraw_permission_can_be_allowed_explicitly(
    tmp_path: Path, exchange: LocalBinanceExchange
) -> None:
    exchange.can_withdraw = True

    summary = _live(tmp_path, exchange, "broker.allow_withdraw_permission=true").run_once()

    assert summary.status == "succeeded"


def test_missing_endpoint_says_the_check_was_skipped(
    tmp_path: Path, exchange: LocalBinanceExchange
) -> None:
    exchange.restrictions_endpoint_enabled = False

    summary = _live(tmp_path, exchange).run_once()

    assert any("skipped" in note for note in summary.notes)
