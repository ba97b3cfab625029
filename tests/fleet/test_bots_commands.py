"""Two named bots on one account of the local Binance exchange, in SHADOW: every record
carries its bot and account, every command takes ``--bot`` / ``--account`` (all by default, a bot
column when there are several), an unknown bot is one line and exit 2, and a kill-switch trip by
bot or by account halts what it names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from bots_fleet import BotFleet, local_exchange
from sqlalchemy import func, select

from otonom_trader.cli import main
from otonom_trader.daemon import ExecutionMode
from otonom_trader.persistence import Database
from otonom_trader.persistence.alert_models import AlertOutboxRecord
from otonom_trader.persistence.guardrail_models import KillSwitchEventRecord
from otonom_trader.persistence.models import (
    BookAccount,
    DaemonRun,
    FillRecord,
    OrderRecord,
    PortfolioSnapshot,
)
from otonom_trader.persistence.shadow_models import ShadowPair

BOTS = ("alpha", "beta")


class FleetDb(BotFleet):
    """The fleet, with the command line on its database."""

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        status = main(["--db", str(self.path), *args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    def db(self) -> Database:
        return self.daemons[BOTS[0]].context.db


def _traded_fleet(tmp_path: Path) -> Iterator[FleetDb]:
    """Three SHADOW cycles of each bot (each buys, sells, buys its own coin)."""
    with local_exchange(USDT=Decimal("10000")) as exchange:
        fleet = FleetDb(
            tmp_path,
            exchange,
            {"alpha": "BTC", "beta": "ETH"},
            mode=ExecutionMode.SHADOW,
            # alerts on, no channel: transitions are recorded in the outbox only
            overrides=["alerts.enabled=true", "guardrails=off"],
        )
        fleet.start()
        try:
            for index in range(3):
                if index:
                    fleet.clock.advance()
                assert all(s.status == "succeeded" for s in fleet.cycle().values())
            yield fleet
        finally:
            fleet.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetDb]:
    """One traded fleet for the tests that only read (built once: they change nothing)."""
    with pytest.MonkeyPatch.context() as patch:
        _environment(patch)
        yield from _traded_fleet(tmp_path_factory.mktemp("fleet"))


@pytest.fixture
def own_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetDb]:
    """A traded fleet of its own, for a test that trips switches."""
    _environment(monkeypatch)
    yield from _traded_fleet(tmp_path)


def _environment(patch: pytest.MonkeyPatch) -> None:
    patch.setenv("COLUMNS", "100")
    patch.setenv("BINANCE_TESTNET_API_KEY", "test-key")
    patch.setenv("BINANCE_TESTNET_API_SECRET", "test-secret")


def test_every_record_carries_its_bot_and_account_and_the_bots_books_add_up(
    fleet: FleetDb,
) -> None:
    db = fleet.db()
    with db.session() as session:
        for model in (DaemonRun, OrderRecord, FillRecord, ShadowPair):
            bots = set(session.scalars(select(model.bot).distinct()))
            assert bots == set(BOTS), model.__tablename__
        for model in (OrderRecord, FillRecord, ShadowPair, PortfolioSnapshot, DaemonRun):
            accounts = set(session.scalars(select(model.account_id).distinct()))
            assert accounts == {fleet.account}, model.__tablename__
        # The account's own snapshots are no bot's; each bot's books are its own.
        owners = dict(
            session.execute(select(PortfolioSnapshot.book, PortfolioSnapshot.bot).distinct()).all()
        )
        assert owners[fleet.account] is None
        assert owners["bot:alpha"] == owners["paper@alpha"] == "alpha"
        # Each fill on the account is one bot's: booked once on the account, once on the bot.
        fills = dict(
            session.execute(select(FillRecord.book, func.count()).group_by(FillRecord.book)).all()
        )
        assert fills[fleet.account] == fills["bot:alpha"] + fills["bot:beta"] > 0
        fees = {row.book: row.fees_paid for row in session.scalars(select(BookAccount))}
        assert fees[fleet.account] == fees["bot:alpha"] + fees["bot:beta"] > 0
        initial = {row.book: row.initial_cash for row in session.scalars(select(BookAccount))}
        assert initial["bot:alpha"] == initial["paper@alpha"] == Decimal("2000")


@pytest.mark.parametrize(
    "command", [["status"], ["trades"], ["orders"], ["profit"], ["equity"]], ids=lambda c: c[0]
)
def test_every_view_shows_every_bot_by_default_and_one_with_bot(
    command: list[str], fleet: FleetDb, capsys: pytest.CaptureFixture[str]
) -> None:
    status, everything, err = fleet.run(capsys, *command)
    assert status == 0, err
    assert "alpha" in everything and "beta" in everything

    status, alpha, err = fleet.run(capsys, *command, "--bot", "alpha")
    assert status == 0, err
    assert "alpha" in alpha and "beta" not in alpha

    status, account, err = fleet.run(capsys, *command, "--account", fleet.account)
    assert status == 0, err
    assert "alpha" in account and "beta" in account


def test_orders_and_trades_name_each_rows_bot(
    fleet: FleetDb, capsys: pytest.CaptureFixture[str]
) -> None:
    _, table, _ = fleet.run(capsys, "orders", "--book", fleet.account, "--limit", "100")
    header = next(line for line in table.splitlines() if "time (UTC)" in line)
    assert header.split()[0] == "bot"

    _, out, _ = fleet.run(capsys, "orders", "--bot", "beta", "--json", "--limit", "100")
    orders = json.loads(out)
    assert orders and {o["bot"] for o in orders} == {"beta"}
    assert {o["book"] for o in orders} == {fleet.account, "paper@beta"}

    _, out, _ = fleet.run(capsys, "trades", "--bot", "alpha", "--json", "--limit", "100")
    trades = json.loads(out)
    assert trades and {t["book"] for t in trades} == {"bot:alpha", "paper@alpha"}


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["trades"],
        ["orders"],
        ["profit"],
        ["equity"],
        ["kill-switch", "status"],
        ["kill-switch", "trip", "--reason", "x"],
        ["shadow-report"],
    ],
    ids=lambda c: "-".join(c[:2]),
)
def test_an_unknown_bot_is_one_line_and_exit_2(
    command: list[str], fleet: FleetDb, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = fleet.run(capsys, *command, "--bot", "gamma")

    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert "--bot" in err and "'gamma'" in err and "alpha" in err
    with fleet.db().session() as session:  # nothing written
        assert session.scalar(select(func.count()).select_from(KillSwitchEventRecord)) == 0


def test_kill_switch_by_bot_halts_that_bot_and_by_account_halts_every_bot(
    own_fleet: FleetDb, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = own_fleet
    status, out, err = fleet.run(capsys, "kill-switch", "trip", "--bot", "alpha", "--reason", "r")
    assert status == 0, err
    assert "'bot:alpha'" in out and "beta" not in out

    fleet.clock.advance()
    alpha, beta = (fleet.daemons[bot].run_once() for bot in BOTS)
    assert alpha.guard_active and not beta.guard_active
    _, listing, _ = fleet.run(capsys, "kill-switch", "status")
    cells = [[c.strip() for c in line.split("│")] for line in listing.splitlines()]
    row = {c[2]: c for c in cells if len(c) > 3 and c[2].startswith("bot:")}
    assert row["bot:alpha"][1:4] == ["alpha", "bot:alpha", "ACTIVE"]
    assert row["bot:beta"][1:4] == ["beta", "bot:beta", "clear"]

    fleet.run(capsys, "kill-switch", "trip", "--account", fleet.account, "--reason", "incident")
    fleet.clock.advance()
    beta_after = fleet.daemons["beta"].run_once()
    assert beta_after.guard_active
    assert not any(line.filled_qty > 0 for line in beta_after.orders)
    with fleet.db().session() as session:
        alerts = session.execute(
            select(AlertOutboxRecord.title, AlertOutboxRecord.body, AlertOutboxRecord.bot).where(
                AlertOutboxRecord.event == "kill_switch"
            )
        ).all()
    # The bot's trip names the bot and its account; the account's names every bot on it.
    assert any(
        f"[bot alpha @ {fleet.account}]" in title
        and f"Bot: alpha · account: {fleet.account}" in body
        and bot == "alpha"
        for title, body, bot in alerts
    )
    assert any(f"[all bots @ {fleet.account}]" in title for title, _, _ in alerts)
    _, detail, _ = fleet.run(capsys, "kill-switch", "status", "--account", fleet.account)
    assert "account level (every bot): daily loss 10.0%" in detail


def test_shadow_report_compares_one_bots_books(
    fleet: FleetDb, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plot = tmp_path / "alpha.png"
    status, out, err = fleet.run(
        capsys,
        "shadow-report",
        "--bot",
        "alpha",
        "--since",
        "2026-11-29",
        "--until",
        "2026-12-01",
        "--plot",
        str(plot),
    )

    with fleet.db().session() as session:
        pairs = session.scalar(
            select(func.count()).select_from(ShadowPair).where(ShadowPair.bot == "alpha")
        )
        everyone = session.scalar(select(func.count()).select_from(ShadowPair))
    assert status == 0, err
    assert 0 < pairs < everyone  # beta's pairs are left out
    assert f"{pairs} shadow pairs" in out and plot.is_file()


def test_shadow_report_by_default_reports_every_bot(
    fleet: FleetDb, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plot = tmp_path / "all.png"
    window = ("--since", "2026-11-29", "--until", "2026-12-01")
    status, out, err = fleet.run(capsys, "shadow-report", *window, "--plot", str(plot))

    assert status == 0, err
    assert "bot alpha" in out and "bot beta" in out
    assert (tmp_path / "all-alpha.png").is_file() and (tmp_path / "all-beta.png").is_file()
