"""A strategy walks research → paper → shadow → live on a simulated clock, through real PAPER
and SHADOW cycles (the simulated exchange, then a local Binance testnet account), a real test
alert over SMTP and a real key audit; each gate first refuses and names what is missing. Then
LIVE on a production account trades with the first period's position cap, and a rollback
demotes the version and halts the account."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.alerts.engine import AlertEngine
from otonom_trader.config.errors import ConfigError
from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.daemon.steps import begin_run
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.kill_switch import KillSwitch
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence import Database
from otonom_trader.promotion.live_gate import position_cap
from otonom_trader.testkit.clock import ManualClock
from otonom_trader.testkit.smtp import LocalSMTPServer, free_port

from .conftest import Promoter, on_production, on_testnet, write_metrics

#: Gate limits small enough for a fast test; the numbers the walk shows are checked against them.
LIMITS = [
    "alerts.enabled=false",
    "promotion.paper.min_days=2",
    "promotion.paper.min_runs=3",
    # The local exchange serves candles up to the real time: SHADOW trades at the real hour and
    # an hour later (its next candle), so the shadow window here is one hour, not 30 days.
    "promotion.shadow.min_days=0.04",
    "promotion.shadow.min_pairs=2",
    "promotion.shadow.min_fill_rate=1.0",
    "promotion.shadow.max_mean_slippage_bps=150",  # the local candles move ≤ 1 % an hour
    "promotion.shadow.max_worst_slippage_bps=200",
    "promotion.shadow.max_pnl_divergence_pct=1.0",
    "promotion.live.first_period_days=7",
    "promotion.live.first_period_max_position_quote=100",
]


def _cycle(db: Path, strategy: Path, mode: ExecutionMode, clock: ManualClock, *extra: str) -> str:
    daemon = TradingDaemon(
        db_path=db, strategy_path=strategy, mode=mode, overrides=[*LIMITS, *extra], clock=clock
    )
    try:
        return daemon.run_once().status
    finally:
        daemon.close()


def _send_test_alert(db: Path, tmp_path: Path, clock: ManualClock, smtp: LocalSMTPServer) -> None:
    config = tmp_path / "alerts.yaml"
    config.write_text(
        "email:\n  enabled: true\n  smtp_host: 127.0.0.1\n"
        f"  smtp_port: {smtp.port}\n  use_tls: false\n  from_addr: bot@example.com\n"
        "  to_addrs: [ops@example.com]\n"
    )
    database = Database(db)
    engine = AlertEngine(config, db=database, clock=clock)
    try:
        report = engine.send_test(now=clock())
    finally:
        engine.close()
        database.dispose()
    assert [outcome.sent for outcome in report.outcomes] == [True]


def test_a_strategy_walks_from_research_to_live_and_each_gate_first_refuses(
    tmp_path: Path,
    strategy: Path,
    clock: ManualClock,
    exchange_keys_in_env: None,
    local_binance: LocalBinanceExchange,
    production_exchange: LocalBinanceExchange,
) -> None:
    db = tmp_path / "trader.db"
    promote = Promoter(db, clock, strategy, list(LIMITS))
    real_hour = clock()
    clock.now = real_hour - timedelta(days=4)

    # research → paper: no backtest, then one without walk-forward, then a good one
    code, out = promote("advance")
    assert code == 1 and "backtest evidence" in out and "none recorded" in out
    code, out = promote(
        "advance", "--evidence", str(write_metrics(tmp_path / "bt1", strategy, out_of_sample=None))
    )
    assert code == 1 and "out-of-sample profit" in out and "walk-forward" in out
    code, out = promote("advance", "--evidence", str(write_metrics(tmp_path / "bt2", strategy)))
    assert code == 0 and "advanced to paper (passed)" in out

    # paper → shadow: no run yet, then one day of runs, then two days
    code, out = promote("advance")
    assert code == 1 and "paper days" in out
    for _ in range(2):
        assert _cycle(db, strategy, ExecutionMode.PAPER, clock) == "succeeded"
        clock.advance(hours=24)
    code, out = promote("advance")
    assert code == 1 and "1.00" in out  # one day spanned, two required
    assert _cycle(db, strategy, ExecutionMode.PAPER, clock) == "succeeded"
    code, out = promote("advance")
    assert code == 0 and "advanced to shadow" in out, out

    # shadow → live: nothing yet; SHADOW on the simulated exchange is not a testnet account
    code, out = promote("check")
    assert code == 1
    for missing in ("no SHADOW run", "none delivered", "not recorded"):
        assert missing in out
    assert _cycle(db, strategy, ExecutionMode.SHADOW, clock) == "succeeded"
    code, out = promote("check", "--json")
    assert code == 1 and "runs on: sim-s-" in out

    # SHADOW on the local testnet at the real hour (fresh candles: it buys), then an hour later
    clock.now = real_hour
    assert _cycle(db, strategy, ExecutionMode.SHADOW, clock, *on_testnet(local_binance)) == (
        "succeeded"
    )
    code, out = promote("check")
    assert code == 1 and "0.00" in out and "0.04" in out  # no time spanned yet
    clock.advance(hours=1)
    assert _cycle(db, strategy, ExecutionMode.SHADOW, clock, *on_testnet(local_binance)) == (
        "succeeded"
    )
    assert len(local_binance.orders) == 4  # bought both symbols, then sold both
    code, out = promote("check")
    assert code == 1
    assert "shadow pairs" in out and "broker fill rate" in out and "100.0%" in out
    assert "none delivered" in out and "not recorded" in out
    strict = ("promotion.shadow.min_pairs=5", "promotion.shadow.max_pnl_divergence_pct=0.001")
    code, out = promote("check", "--json", extra=strict)
    failing = {
        c["name"]: c["value"] for c in json.loads(out)["gates"][0]["checks"] if not c["passed"]
    }
    assert failing["shadow pairs"] == "4"
    assert failing["PnL divergence broker vs paper"].endswith("%")

    # the operational checks: a test alert delivered, the production key audited
    smtp = LocalSMTPServer(port=free_port())
    smtp.start()
    try:
        _send_test_alert(db, tmp_path, clock, smtp)
    finally:
        smtp.stop()
    code, out = promote("check", extra=("guardrails=off", *on_production(production_exchange)))
    assert code == 1 and "no withdrawal" in out and "│ off" in out
    code, out = promote(
        "advance", "--actor", "alice", extra=tuple(on_production(production_exchange))
    )
    assert code == 0 and "advanced to live (passed)" in out, out
    assert "live cap: positions capped at 100 (quote)" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert production_exchange.orders == []  # an audit sends no order

    # LIVE on the production account: allowed now, every position capped at 100 USDT
    assert _cycle(db, strategy, ExecutionMode.LIVE, clock, *on_production(production_exchange)) == (
        "succeeded"
    )
    assert len(production_exchange.orders) == 2
    spent = [order.cumm_quote_qty for order in production_exchange.orders]
    assert all(Decimal(50) < quote <= Decimal(100) for quote in spent), spent  # not 20 % of equity
    daemon = TradingDaemon(
        db_path=db,
        strategy_path=strategy,
        mode=ExecutionMode.LIVE,
        overrides=[*LIMITS, *on_production(production_exchange)],
        clock=clock,
    )
    try:
        assert position_cap(daemon.context, clock()) == Decimal(100)
        assert position_cap(daemon.context, clock() + timedelta(days=7, seconds=1)) is None
        live_book = daemon.context.account.book
    finally:
        daemon.close()

    # rollback: demoted to shadow, the production account halted, LIVE refused again
    code, out = promote(
        "rollback", "--reason", "fills diverge", extra=tuple(on_production(production_exchange))
    )
    assert code == 0 and "stage shadow" in out and f"kill-switch tripped on {live_book}" in out
    database = Database(db)
    try:
        active, reason = KillSwitch(database, GuardrailConfig(), live_book).status()
    finally:
        database.dispose()
    assert active is True and reason is not None and "fills diverge" in reason
    code, out = promote("status")
    assert "rollback: live → shadow" in out and "fills diverge" in out
    with pytest.raises(ConfigError, match="missing gate shadow → live"):
        TradingDaemon(
            db_path=db,
            strategy_path=strategy,
            mode=ExecutionMode.LIVE,
            overrides=[*LIMITS, *on_production(production_exchange)],
        )


def test_a_paper_run_that_died_mid_cycle_keeps_the_paper_gate_shut(
    tmp_path: Path, strategy: Path, clock: ManualClock
) -> None:
    db = tmp_path / "trader.db"
    promote = Promoter(db, clock, strategy, list(LIMITS))
    promote("advance", "--evidence", str(write_metrics(tmp_path / "bt", strategy)))
    daemon = TradingDaemon(
        db_path=db, strategy_path=strategy, mode=ExecutionMode.PAPER, overrides=LIMITS, clock=clock
    )
    try:
        begin_run(daemon.context, "killed-run")  # a process killed mid-cycle leaves it running
        for _ in range(3):
            assert daemon.run_once().status == "succeeded"  # the first marks it abandoned
            clock.advance(hours=24)
    finally:
        daemon.close()

    code, out = promote("advance")

    assert code == 1
    assert "paper runs failed or" in out and "abandoned" in out
    assert "│ 1 " in out
