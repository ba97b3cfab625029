"""The kill-switch command line, the fire drill, and a halt that survives kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from otonom_trader.cli import main
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.guardrails.drill import run_drill
from otonom_trader.mode import ExecutionMode
from otonom_trader.persistence import Database
from otonom_trader.persistence.database import default_sqlite_path

PROJECT = Path(__file__).resolve().parents[2]


def test_trip_status_reset_through_the_cli_are_audited(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["kill-switch", "trip", "--reason", "exchange incident", "--actor", "alice"]) == 0
    assert main(["kill-switch", "status", "--book", "paper"]) == 0
    halted = capsys.readouterr().out
    assert main(["kill-switch", "reset", "--reason", "all clear", "--actor", "bob"]) == 0
    assert main(["kill-switch", "status", "--book", "*"]) == 0
    cleared = capsys.readouterr().out

    assert "book 'paper'" in halted and "ACTIVE" in halted and "exchange incident" in halted
    assert "clear" in cleared and "alice" in cleared and "bob" in cleared


def test_trip_without_a_scope_halts_every_book_and_names_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Arrange: two books exist (a paper book and an account's book)
    assert main(["kill-switch", "trip", "--book", "paper", "--reason", "x"]) == 0
    assert main(["kill-switch", "reset", "--book", "paper", "--reason", "x"]) == 0
    assert main(["kill-switch", "trip", "--book", "binance-t-0123456789", "--reason", "x"]) == 0
    assert main(["kill-switch", "reset", "--book", "binance-t-0123456789", "--reason", "x"]) == 0
    capsys.readouterr()

    # Act
    assert main(["-o", "mode=shadow", "kill-switch", "trip", "--reason", "STOP"]) == 0
    tripped = capsys.readouterr().out
    assert main(["kill-switch", "status"]) == 0
    listed = capsys.readouterr().out

    # Assert: every book named, and the all-books switch covers books first used later
    assert "book 'paper'" in tripped and "book 'binance-t-0123456789'" in tripped
    assert "every book" in tripped
    assert listed.count("ACTIVE") == 3 and "STOP" in listed


def test_an_empty_reason_is_one_clear_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["kill-switch", "trip", "--reason", "   "])

    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == "config error: --reason: must not be empty"


@pytest.mark.parametrize("mode", [ExecutionMode.PAPER, ExecutionMode.SHADOW])
def test_drill_halts_rejects_passes_cancels_alerts_and_resets_for_every_guardrail(
    mode: ExecutionMode,
) -> None:
    report = run_drill(GuardrailConfig(), mode)

    assert report.halts == ["daily_loss", "drawdown", "consecutive_losses"]
    assert all(r.startswith("KILL-SWITCH active") for r in report.rejected)
    assert report.complete


def test_drill_with_reduce_only_shows_a_closing_sell_passing() -> None:
    cfg = GuardrailConfig(
        max_daily_loss_pct=2.0,
        max_drawdown_pct=10.0,
        max_consecutive_losses=3,
        halt_policy="reduce_only",
    )

    report = run_drill(cfg, ExecutionMode.PAPER)

    assert report.complete and report.reduce_only_passed == 3


def test_drill_leaves_the_real_database_untouched() -> None:
    assert main(["kill-switch", "trip", "--reason", "real halt", "--actor", "alice"]) == 0
    real = Database(default_sqlite_path())
    before = _dump(real)

    status = main(["drill", "kill-switch", "--mode", "shadow"])

    assert status == 0
    assert _dump(real) == before
    real.dispose()


def test_drill_refuses_guardrails_off(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["-o", "guardrails=off", "drill", "kill-switch"])

    assert status == 2
    assert "guardrails are off" in capsys.readouterr().err


def _dump(db: Database) -> dict[str, list[tuple[object, ...]]]:
    tables = [
        "kill_switch_state",
        "kill_switch_events",
        "orders",
        "fills",
        "portfolio_snapshots",
        "book_accounts",
        "book_positions",
    ]
    with db.engine.connect() as conn:
        return {
            t: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))]
            for t in tables
        }


HALT_THEN_HANG = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, UTC
    from decimal import Decimal
    from otonom_trader.guardrails.config import GuardrailConfig
    from otonom_trader.guardrails.kill_switch import KillSwitch
    from otonom_trader.persistence import Database

    switch = KillSwitch(Database(sys.argv[1]), GuardrailConfig(), "paper")
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    switch.evaluate(Decimal(10000), now)
    decision = switch.evaluate(Decimal(9000), now.replace(minute=5))
    print("HALTED" if decision.active else "CLEAR", flush=True)
    while True:  # a daemon between cycles, until it is killed
        time.sleep(1)
    """
)

NEXT_CYCLE = textwrap.dedent(
    """
    import sys
    from datetime import datetime, UTC
    from decimal import Decimal
    from otonom_trader.guardrails.config import GuardrailConfig
    from otonom_trader.guardrails.kill_switch import KillSwitch
    from otonom_trader.persistence import Database

    switch = KillSwitch(Database(sys.argv[1]), GuardrailConfig(), "paper")
    # Equity is back at the day's start: only the persisted daily-loss hold can still halt.
    decision = switch.evaluate(Decimal(10000), datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    print("HALTED" if decision.active else "CLEAR", decision.reason, flush=True)
    """
)


def test_a_halt_survives_kill_9_and_the_next_cycle_is_still_halted(tmp_path: Path) -> None:
    db_path = str(tmp_path / "daemon.db")
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    first = subprocess.Popen(
        [sys.executable, "-c", HALT_THEN_HANG, db_path], stdout=subprocess.PIPE, text=True, env=env
    )
    assert first.stdout is not None
    assert first.stdout.readline().strip() == "HALTED"

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    restarted = subprocess.run(
        [sys.executable, "-c", NEXT_CYCLE, db_path],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )

    assert first.returncode == -signal.SIGKILL
    assert restarted.stdout.startswith("HALTED daily loss 10.00% >= 5.0%")
