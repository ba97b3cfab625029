"""Each gate refuses with its reason and numbers when its evidence is missing or short; a
backtest's metrics.json is accepted only for the file it ran on; forced advances need a
reason and are recorded; the API-key audit is recorded and a withdraw-capable key refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from otonom_trader.cli import main
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence import Database
from otonom_trader.persistence.registry import metadata
from otonom_trader.testkit.clock import ManualClock

from .conftest import Promoter, on_production, write_metrics

PROMOTION_TABLES = ("strategy_versions", "promotion_evidence", "promotion_events")


def _checks(output: str) -> dict[str, dict[str, Any]]:
    """``--json`` output → the first gate's checks by name."""
    gate = json.loads(output)["gates"][0]
    return {check["name"]: check for check in gate["checks"]}


@pytest.mark.parametrize(
    ("change", "failing", "value"),
    [
        ({"span_days": 90.0}, "backtest span (days)", "90.0"),
        ({"trades": 7}, "backtest trades", "7"),
        ({"max_drawdown": 0.41}, "max drawdown", "41.00%"),
        (
            {"out_of_sample": {"profit_factor": 0.8, "trades": 9}},
            "out-of-sample profit factor",
            "0.80",
        ),
    ],
)
def test_research_gate_refuses_a_backtest_short_of_one_limit_and_names_it(
    tmp_path: Path,
    strategy: Path,
    clock: ManualClock,
    change: dict[str, Any],
    failing: str,
    value: str,
) -> None:
    promote = Promoter(tmp_path / "t.db", clock, strategy)
    metrics = write_metrics(tmp_path / "bt", strategy, **change)

    code, out = promote("advance", "--evidence", str(metrics), "--json")

    checks = _checks(out)
    assert code == 1
    assert checks[failing]["passed"] is False and checks[failing]["value"] == value
    assert [name for name, check in checks.items() if not check["passed"]] == [failing]
    assert json.loads(out)["stage"] == "research"


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p, s: write_metrics(p, s, strategy_hash="0" * 64), "is not the hash of"),
        (lambda p, s: write_metrics(p, s, strategy_version="2.0"), "strategy_version"),
        (lambda p, s: write_metrics(p, s, trades="many"), "trades: expected a finite number"),
        (lambda p, s: _write(p, "{not json"), "not valid JSON"),
        (lambda p, s: _write(p, '{"trades": 3}'), "strategy_name: missing"),
        (lambda p, s: p / "absent.json", "cannot read the backtest metrics"),
    ],
)
def test_bad_backtest_evidence_is_one_line_exit_2_and_records_nothing(
    tmp_path: Path,
    strategy: Path,
    write: Callable[[Path, Path], Path],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "t.db"
    evidence = write(tmp_path / "bt", strategy)

    code = main(
        [
            "--db",
            str(db),
            "promote",
            "check",
            "--strategy",
            str(strategy),
            "--evidence",
            str(evidence),
        ]
    )

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err
    database = Database(db)
    try:
        with database.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT count(*) FROM promotion_evidence").scalar()
    finally:
        database.dispose()
    assert rows == 0


def _write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "metrics.json"
    path.write_text(text)
    return path


def test_forced_advance_needs_a_reason_and_records_it_with_the_failing_checks(
    tmp_path: Path, strategy: Path, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "t.db"
    promote = Promoter(db, clock, strategy)
    line = ["--db", str(db), "promote", "advance", "--strategy", str(strategy), "--force"]
    assert main(line) == 2
    assert "--reason" in capsys.readouterr().err

    code, out = promote("advance", "--force", "--reason", "paper costs nothing", "--json")

    result = json.loads(out)
    assert code == 0 and result["stage"] == "paper"
    assert result["advance"].startswith("advanced to paper (FORCED")
    [event] = result["events"]
    assert event["kind"] == "forced" and event["reason"] == "paper costs nothing"
    code, out = promote("status")
    assert "forced: research → paper" in out and "backtest evidence" in out  # as recorded


def test_rollback_of_a_version_that_is_not_live_is_refused(
    tmp_path: Path, strategy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--db",
            str(tmp_path / "t.db"),
            "promote",
            "rollback",
            "--strategy",
            str(strategy),
            "--reason",
            "x",
        ]
    )

    assert code == 2
    assert "is at research; rollback demotes a live version" in capsys.readouterr().err


def test_a_key_that_can_withdraw_is_recorded_and_keeps_the_live_gate_shut(
    tmp_path: Path,
    strategy: Path,
    clock: ManualClock,
    exchange_keys_in_env: None,
    production_exchange: LocalBinanceExchange,
) -> None:
    promote = Promoter(tmp_path / "t.db", clock, strategy)
    for _ in range(2):
        promote("advance", "--force", "--reason", "to reach shadow")
    production_exchange.can_withdraw = True

    code, out = promote("check", "--json", extra=tuple(on_production(production_exchange)))

    checks = _checks(out)
    assert code == 1
    assert checks["API-key audit"] == {
        "name": "API-key audit",
        "value": "the key CAN WITHDRAW",
        "required": "checked, no withdrawal",
        "passed": False,
    }
    assert "WITHDRAW" in json.loads(out)["key_audit"]
    assert production_exchange.orders == []


def test_migration_creates_the_tables_the_models_describe(any_db: Database) -> None:
    with any_db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)

    ours = [diff for diff in diffs if any(name in repr(diff) for name in PROMOTION_TABLES)]
    assert ours == []
    assert "0008_promotion" in any_db.current_revisions()


def test_a_promotion_limit_out_of_range_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--db",
            str(tmp_path / "t.db"),
            "-o",
            "promotion.research.max_drawdown=2",
            "promote",
            "status",
        ]
    )

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "promotion.research.max_drawdown" in err and "fraction" in err
    assert not (tmp_path / "t.db").exists()
