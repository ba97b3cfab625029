"""TradingDaemon end to end, offline: PAPER, SHADOW and LIVE on the default (simulated) broker."""

from __future__ import annotations

import json
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from otonom_trader.config.compose import PROJECT_ROOT
from otonom_trader.config.errors import ConfigError
from otonom_trader.daemon import ExecutionMode, TradingDaemon, steps
from otonom_trader.persistence import (
    BookAccount,
    DaemonRun,
    FillRecord,
    OrderRecord,
    PortfolioSnapshot,
)
from otonom_trader.persistence.shadow_models import ShadowPair

GUIDE = PROJECT_ROOT.parent / "shared" / "spec" / "broker_integration_guide.md"
NO_ALERTS = ["alerts.enabled=false"]


def _daemon(
    tmp_path: Path,
    strategy: Path,
    mode: ExecutionMode,
    clock: Any,
    overrides: list[str] | None = None,
) -> TradingDaemon:
    return TradingDaemon(
        db_path=tmp_path / "trader.db",
        strategy_path=strategy,
        mode=mode,
        overrides=[*NO_ALERTS, *(overrides or [])],
        clock=clock,
    )


def test_guide_python_snippets_for_trading_daemon_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not GUIDE.is_file():
        pytest.skip(f"the guide is not beside the repository ({GUIDE})")
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    snippets = [b for b in blocks if "TradingDaemon(" in b]
    assert len(snippets) == 2
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    # The guide's config/broker.yaml, pointing at the default (simulated) broker.
    (tmp_path / "config" / "broker.yaml").write_text("kind: sim\ntestnet: true\n")

    for snippet in snippets:
        exec(compile(snippet, str(GUIDE), "exec"), {})

    runs = TradingDaemon(db_path="trader.db").context.db
    with runs.session() as session:
        statuses = session.scalars(select(DaemonRun.status)).all()
    assert statuses == ["succeeded", "succeeded"]


def test_ten_paper_runs_keep_one_consistent_book_to_the_cent(
    tmp_path: Path, always_trade: Path, clock: Any
) -> None:
    daemon = _daemon(tmp_path, always_trade, ExecutionMode.PAPER, clock)
    for _ in range(10):
        summary = daemon.run_once()
        assert summary.status == "succeeded"
        clock.advance()

    db = daemon.context.db
    with db.session() as session:
        snapshots = session.scalars(
            select(PortfolioSnapshot)
            .where(PortfolioSnapshot.book == "paper")
            .order_by(PortfolioSnapshot.id)
        ).all()
        fills = session.scalars(select(FillRecord).where(FillRecord.book == "paper")).all()
        account = session.get(BookAccount, "paper")
    assert len(snapshots) == 10
    assert len(fills) >= 10  # it really traded: buys and sells alternate
    for snap in snapshots:
        positions = json.loads(snap.positions_json)
        marked = sum(Decimal(p["quantity"]) * Decimal(p["mark_price"]) for p in positions)
        assert snap.equity == snap.cash + marked
        assert snap.peak_equity >= snap.equity
    # Cash is exactly the start minus buys plus sells minus fees: nothing lost between runs.
    flows = sum(
        (-(f.quantity * f.price) if f.side == "buy" else f.quantity * f.price) - f.fee
        for f in fills
    )
    assert account is not None and account.cash == Decimal("10000") + flows
    assert round(snapshots[-1].cash, 2) == round(account.cash, 2)


def _leg_books(daemon: TradingDaemon) -> tuple[str, str]:
    """(paper book, broker book) of a SHADOW or LIVE daemon: both belong to its account."""
    account = daemon.context.account
    return account.shadow_paper_book, account.book


def _venue(daemon: TradingDaemon) -> Any:
    """The venue behind the broker leg's gate (tests look at the exchange's own account)."""
    leg = daemon.context.broker_leg
    assert leg is not None
    return leg.gate.raw_broker


def test_shadow_sends_the_same_intents_to_both_books_and_pairs_them(
    tmp_path: Path, always_trade: Path, clock: Any
) -> None:
    daemon = _daemon(tmp_path, always_trade, ExecutionMode.SHADOW, clock)
    for _ in range(4):
        daemon.run_once()
        clock.advance()

    with daemon.context.db.session() as session:
        orders = session.scalars(select(OrderRecord)).all()
        pairs = session.scalars(select(ShadowPair)).all()
        books = {s.book for s in session.scalars(select(PortfolioSnapshot)).all()}
    paper_book, broker_book = _leg_books(daemon)
    paper = [o for o in orders if o.book == paper_book]
    broker = [o for o in orders if o.book == broker_book]
    assert len(paper) == len(broker) == len(pairs) > 0
    assert [(o.symbol, o.side) for o in paper] == [(o.symbol, o.side) for o in broker]
    assert books == {paper_book, broker_book}
    assert broker_book == daemon.context.account.account_id
    assert paper_book == f"paper:{broker_book}"
    # The simulated exchange has its own fill model: the books diverge in price.
    assert any(p.avg_fill_price != b.avg_fill_price for p, b in zip(paper, broker, strict=True))
    assert daemon.context.broker_name == "sim (simulated exchange)"


def test_shadow_broker_snapshot_equals_the_exchange_account(
    tmp_path: Path, always_trade: Path, clock: Any
) -> None:
    daemon = _daemon(tmp_path, always_trade, ExecutionMode.SHADOW, clock)
    summary = daemon.run_once()

    broker_line = next(b for b in summary.books if b.book == _leg_books(daemon)[1])
    sim = _venue(daemon)
    assert broker_line.equity == sim.equity()  # type: ignore[attr-defined]


def test_sim_exchange_account_survives_a_restart(
    tmp_path: Path, always_trade: Path, clock: Any
) -> None:
    first = _daemon(tmp_path, always_trade, ExecutionMode.SHADOW, clock)
    first.run_once()
    balances = _venue(first).get_balances()
    first.close()

    second = _daemon(tmp_path, always_trade, ExecutionMode.SHADOW, clock)

    assert _venue(second).get_balances() == balances


def test_live_uses_only_the_broker_and_logs_the_paper_book(
    tmp_path: Path, always_trade: Path, clock: Any
) -> None:
    daemon = _daemon(tmp_path, always_trade, ExecutionMode.LIVE, clock)
    summary = daemon.run_once()

    assert {o.book for o in summary.orders} == set(_leg_books(daemon))
    (tmp_path / "b").mkdir()  # a user's database path is never created beyond the file
    without_paper = _daemon(
        tmp_path / "b", always_trade, ExecutionMode.LIVE, clock, ["mode.paper_book_in_live=false"]
    )
    assert {o.book for o in without_paper.run_once().orders} == {without_paper.context.account.book}


@pytest.mark.parametrize("mode", [ExecutionMode.LIVE, ExecutionMode.SHADOW])
def test_production_exchange_is_refused_without_confirmation(
    tmp_path: Path,
    always_trade: Path,
    clock: Any,
    mode: ExecutionMode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTONOM_CONFIRM_PRODUCTION", raising=False)
    with pytest.raises(ConfigError, match="real money.*confirm_production"):
        _daemon(tmp_path, always_trade, mode, clock, ["broker=binance"])  # refused up front
    assert not (tmp_path / "trader.db").exists()  # refused before anything was opened or sent


def test_re_running_execute_for_the_same_cycle_sends_nothing_twice(
    tmp_path: Path, always_trade: Path, clock: Any
) -> None:
    daemon = _daemon(tmp_path, always_trade, ExecutionMode.SHADOW, clock)
    ctx = daemon.context
    now = clock()
    batch = steps.fetch_signal(ctx, now)
    steps.guard_check(ctx, batch, now)

    first = steps.execute(ctx, batch, "run-x")
    again = steps.execute(ctx, batch, "run-x")

    with ctx.db.session() as session:
        count = session.scalar(select(func.count()).select_from(OrderRecord))
    assert len(first) == len(again) == count > 0
    assert all("not resent" in (line.error or "") for line in again)
    broker_leg = ctx.broker_leg
    assert broker_leg is not None
    assert broker_leg.gate.raw_broker.orders_accepted == count // 2  # type: ignore[attr-defined]


def test_bad_market_data_is_reported_and_not_traded(
    tmp_path: Path, always_trade: Path, clock: Any
) -> None:
    csv = tmp_path / "gappy.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    start = int(clock().timestamp()) // 3600 * 3600 - 60 * 3600
    for i in range(60):
        if i == 30:
            continue  # a missing candle
        t = (start + i * 3600) * 1000
        rows.append(f"{t},100,101,99,100.5,10")
    csv.write_text("\n".join(rows) + "\n")
    daemon = _daemon(
        tmp_path, always_trade, ExecutionMode.PAPER, clock, ["data=csv", f"data.csv_path={csv}"]
    )

    summary = daemon.run_once()

    assert summary.orders == []
    assert all(s.action == "skip" for s in summary.signals)
    assert any("gap" in issue for issue in summary.data_issues)


def test_failed_cycle_is_recorded_as_failed(tmp_path: Path, always_trade: Path, clock: Any) -> None:
    daemon = _daemon(tmp_path, always_trade, ExecutionMode.PAPER, clock)
    ctx = daemon.context

    def broken_fetch(*_: object) -> None:
        raise RuntimeError("data feed exploded")

    ctx.market_data.fetch = broken_fetch  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        daemon.run_once(run_id="boom")

    with ctx.db.session() as session:
        run = session.scalars(select(DaemonRun).where(DaemonRun.run_id == "boom")).one()
    assert run.status == "failed" and "data feed exploded" in (run.error or "")
    assert os.environ.get("OTONOM_HOME")  # the isolated home fixture is active


def test_mode_override_without_a_mode_argument_runs_that_mode(tmp_path: Path) -> None:
    daemon = TradingDaemon(db_path=tmp_path / "trader.db", overrides=[*NO_ALERTS, "mode=shadow"])

    assert daemon.config.mode.execution_mode is ExecutionMode.SHADOW


@pytest.mark.parametrize(
    ("arguments", "override", "named"),
    [
        ({"mode": ExecutionMode.PAPER}, "mode=shadow", "mode"),
        ({"mode": "live"}, "mode.name=paper", "mode"),
        ({"strategy_path": "strategies/baseline_v1.0.yaml"}, "strategy.path=x.yaml", "strategy"),
        ({"db_path": "x.db"}, "db.url=y.db", "db_path"),
    ],
)
def test_an_override_contradicting_an_explicit_argument_is_refused(
    tmp_path: Path, arguments: dict[str, Any], override: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{named}.*{re.escape(override)}.*give one"):
        TradingDaemon(**arguments, overrides=[override])
    assert not any(tmp_path.iterdir())


def test_the_same_mode_given_as_argument_and_override_is_no_contradiction(tmp_path: Path) -> None:
    daemon = TradingDaemon(
        db_path=tmp_path / "trader.db", mode="shadow", overrides=[*NO_ALERTS, "mode=shadow"]
    )

    assert daemon.config.mode.execution_mode is ExecutionMode.SHADOW


def test_a_guard_config_beyond_the_bounds_is_refused_before_anything_is_opened(
    tmp_path: Path,
) -> None:
    from otonom_trader.broker import GuardrailConfig

    with pytest.raises(ConfigError, match="guardrails.max_consecutive_losses.*1000"):
        TradingDaemon(
            db_path=tmp_path / "trader.db",
            guard_cfg=GuardrailConfig(max_consecutive_losses=10**30),
            overrides=NO_ALERTS,
        )
    assert not (tmp_path / "trader.db").exists()


def test_a_strategy_symbol_the_venue_does_not_list_is_refused_before_any_order(
    tmp_path: Path,
) -> None:
    strategy = tmp_path / "foo.yaml"
    text = (PROJECT_ROOT / "strategies" / "baseline_v1.0.yaml").read_text()
    strategy.write_text(text.replace("ETH/USDT", "FOO/BAR"))

    with pytest.raises(ConfigError, match="FOO/BAR is not a market of the venue"):
        TradingDaemon(
            db_path=tmp_path / "trader.db",
            strategy_path=strategy,
            mode=ExecutionMode.SHADOW,
            overrides=NO_ALERTS,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foo.yaml"]
