"""``shadow-report`` through a real argparse parser shaped like the top-level one."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from otonom_trader.config.errors import ConfigError
from otonom_trader.persistence import Database
from otonom_trader.shadow.cli import parse_when, register, run_shadow_report

from .conftest import Example

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)


def _parse(argv: list[str]) -> argparse.Namespace:
    """Parse like ``otonom_trader.cli``: ``--db`` and ``-o`` before the subcommand."""
    parser = argparse.ArgumentParser(prog="otonom-trader")
    parser.add_argument("--db", default=None)
    parser.add_argument("-o", "--override", dest="overrides", action="append", default=[])
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    return parser.parse_args(argv)


def _db_path(db: Database) -> str:
    assert db.engine.url.database is not None
    return db.engine.url.database


def _run(args: argparse.Namespace) -> tuple[int, str]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, color_system=None)
    code = run_shadow_report(args, now=NOW, console=console)
    return code, buffer.getvalue()


def test_shadow_report_prints_the_statistics_and_writes_the_plot(
    example: Example,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: the real handler (its own clock and console), explicit window
    monkeypatch.setenv("COLUMNS", "160")
    (tmp_path / "out").mkdir()
    plot = tmp_path / "out" / "equity.png"
    args = _parse(
        [
            "--db",
            _db_path(example.db),
            "shadow-report",
            "--since",
            "2025-03-01T12:00",
            "--until",
            "2025-03-02T12:00:00+00:00",
            "--plot",
            str(plot),
            "--pairs",
            "2",
        ]
    )

    # Act
    code = args.func(args)

    # Assert
    out = capsys.readouterr().out
    assert code == 0
    assert "4 shadow pairs" in out
    assert "100.0% (4/4)" in out and "50.0% (2/4)" in out
    assert "12.50" in out and "-0.124275" in out
    assert "PnL difference (broker − paper): -30" in out
    assert "last 2 of 4 pairs" in out
    assert "halted" in out and "rejected" in out
    assert f"equity plot written to {plot}" in out
    assert plot.read_bytes()[:8] == PNG_SIGNATURE


def test_shadow_report_defaults_to_the_last_7_days_and_the_home_reports_folder(
    example: Example, isolated_home: Path
) -> None:
    # Arrange: NOW is one day after the example window opened
    args = _parse(["--db", _db_path(example.db), "shadow-report"])

    # Act
    code, out = _run(args)

    # Assert
    default_plot = isolated_home / "reports" / "shadow-equity.png"
    assert code == 0
    assert "2025-02-23T12:00:00+00:00 → 2025-03-02T12:00:00+00:00" in out
    assert "5 shadow pairs" in out  # the example's four plus its pair from 2 days earlier
    assert f"equity plot written to {default_plot}" in out
    assert default_plot.read_bytes()[:8] == PNG_SIGNATURE


def test_shadow_report_relative_since_narrows_the_window(example: Example, tmp_path: Path) -> None:
    # Arrange: 21h back from NOW = 2025-03-01T15:00, after pairs 1 and 2 (13:00, 14:00)
    args = _parse(
        [
            "--db",
            _db_path(example.db),
            "shadow-report",
            "--since",
            "21h",
            "--plot",
            str(tmp_path / "p.png"),
        ]
    )

    # Act
    code, out = _run(args)

    # Assert
    assert code == 0
    assert "2 shadow pairs" in out
    assert "100.0% (2/2)" in out and "0.0% (0/2)" in out


def test_shadow_report_with_run_id_shows_only_that_run(example: Example, tmp_path: Path) -> None:
    # Arrange
    args = _parse(
        [
            "--db",
            _db_path(example.db),
            "shadow-report",
            "--run-id",
            example.run_id,
            "--plot",
            str(tmp_path / "run.png"),
        ]
    )

    # Act
    code, out = _run(args)

    # Assert
    assert code == 0
    assert f"run {example.run_id}" in out
    assert "4 shadow pairs" in out
    assert "PnL difference (broker − paper): -30" in out


def test_shadow_report_on_an_empty_database_says_no_pairs_and_exits_0(
    sqlite_db: Database, tmp_path: Path
) -> None:
    # Arrange
    plot = tmp_path / "empty.png"
    args = _parse(["--db", _db_path(sqlite_db), "shadow-report", "--plot", str(plot)])

    # Act
    code, out = _run(args)

    # Assert
    assert code == 0
    assert "no shadow pairs in this window" in out
    assert "nothing to plot (no file written)" in out
    assert not plot.exists()


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--since", "last tuesday"], "--since"),
        (["--until", "2025-13-45"], "--until"),
        (["--since", "2025-03-02", "--until", "2025-03-01"], "--since"),
    ],
)
def test_shadow_report_with_a_bad_time_prints_one_line_naming_the_flag_and_exits_2(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    # Arrange
    args = _parse(["--db", _db_path(sqlite_db), "shadow-report", *argv])

    # Act
    code, out = _run(args)

    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"otonom-trader shadow-report: {flag}: ")
    assert "Traceback" not in err


def test_shadow_report_with_a_negative_pairs_count_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Act
    with pytest.raises(SystemExit) as exit_info:
        _parse(["shadow-report", "--pairs", "-3"])

    # Assert
    assert exit_info.value.code == 2
    assert "--pairs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("90m", NOW - timedelta(minutes=90)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1.5d", NOW - timedelta(hours=36)),
        ("now", NOW),
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
        ("2025-01-31T12:30", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
        ("2025-01-31T12:30+02:00", datetime(2025, 1, 31, 10, 30, tzinfo=UTC)),
        ("2025-01-31T12:30:00Z", datetime(2025, 1, 31, 12, 30, tzinfo=UTC)),
    ],
)
def test_parse_when_reads_iso_times_and_spans_back_from_now(text: str, expected: datetime) -> None:
    # Act
    parsed = parse_when(text, now=NOW, flag="--since")

    # Assert
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_parse_when_names_the_flag_in_its_error() -> None:
    # Act / Assert
    with pytest.raises(ConfigError, match=r"^--until: cannot read 'yesterday-ish'"):
        parse_when("yesterday-ish", now=NOW, flag="--until")
