"""LIVE on a production account starts only a version promoted to live — through the real
command line: an unpromoted or edited strategy is refused with one line naming the missing gate
(exit 2, no order, no database created); testnet and simulated accounts are free."""

from __future__ import annotations

from pathlib import Path

import pytest

from otonom_trader.cli import main
from otonom_trader.config.compose import load_config
from otonom_trader.config.errors import ConfigError
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence import Database
from otonom_trader.promotion.live_gate import refuse_unpromoted_live
from otonom_trader.testkit.promotion import force_live

from .conftest import on_production, on_testnet


def _live(db: Path, strategy: Path, venue: list[str]) -> list[str]:
    argv = ["--db", str(db), "daemon-once", "--mode", "live", "--strategy", str(strategy)]
    for item in ("alerts.enabled=false", *venue):
        argv += ["-o", item]
    return argv


def test_live_on_production_refuses_an_unpromoted_strategy_in_one_line_and_sends_nothing(
    tmp_path: Path,
    strategy: Path,
    exchange_keys_in_env: None,
    production_exchange: LocalBinanceExchange,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "trader.db"

    code = main(_live(db, strategy, on_production(production_exchange)))

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "not promoted to live" in err and "missing gate research → paper" in err
    assert "always_trade v1.0" in err
    assert production_exchange.orders == []
    assert not db.exists()  # refused before anything was opened


def test_live_on_production_starts_a_promoted_strategy_and_refuses_it_once_edited(
    tmp_path: Path,
    strategy: Path,
    exchange_keys_in_env: None,
    production_exchange: LocalBinanceExchange,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "trader.db"
    force_live(db, strategy, reason="test: promoted by hand")
    assert main(_live(db, strategy, on_production(production_exchange))) == 0
    sent = len(production_exchange.orders)
    assert sent == 2
    capsys.readouterr()

    # Act: the file is edited (a new hash), however small the edit
    strategy.write_text(strategy.read_text() + "# tuned\n")
    code = main(_live(db, strategy, on_production(production_exchange)))

    # Assert
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "missing gate research → paper" in err and "starts over" in err
    assert len(production_exchange.orders) == sent
    assert main(["--db", str(db), "promote", "status", "--strategy", str(strategy)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "stage research" in out and "this one (new hash) starts at research" in out


@pytest.mark.parametrize("venue", ["testnet", "sim"])
def test_live_on_testnet_and_simulated_accounts_needs_no_promotion_and_is_not_capped(
    tmp_path: Path,
    strategy: Path,
    exchange_keys_in_env: None,
    local_binance: LocalBinanceExchange,
    venue: str,
) -> None:
    overrides = on_testnet(local_binance) if venue == "testnet" else ["broker=sim"]

    code = main(_live(tmp_path / "trader.db", strategy, overrides))

    assert code == 0
    assert len(local_binance.orders) == (2 if venue == "testnet" else 0)
    # and no first-period cap: each buy is the strategy's 20 % of equity, not 100 USDT
    assert all(order.cumm_quote_qty > 1000 for order in local_binance.orders)


def test_the_start_check_reads_the_promotion_records_on_postgresql_and_wants_guardrails_on(
    postgres_db: Database, strategy: Path, exchange_keys_in_env: None
) -> None:
    _, app = load_config(["mode=live", "broker=binance"])
    app.db.url, app.strategy.path = postgres_db.url, str(strategy)
    with pytest.raises(ConfigError, match="missing gate research → paper"):
        refuse_unpromoted_live(app)

    force_live(postgres_db.url, strategy, reason="test: promoted by hand")

    refuse_unpromoted_live(app)  # promoted: nothing to refuse
    app.guardrails.enabled = False
    with pytest.raises(ConfigError, match="guardrails: .* with guardrails off"):
        refuse_unpromoted_live(app)
