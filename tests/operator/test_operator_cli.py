"""``status``, ``trades``, ``orders``, ``profit``, ``equity``: 80 columns, JSON, filters, errors."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from traded_books import TradedDatabase

from otonom_trader.cli import main
from otonom_trader.operator import views
from otonom_trader.persistence import Database

COMMANDS = (["status"], ["trades"], ["orders"], ["profit"], ["equity"])


@pytest.fixture(autouse=True)
def eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def _run(
    traded: TradedDatabase, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    status = main(["--db", str(traded.path), *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_view_fits_80_columns_and_names_both_books(
    command: list[str], traded: TradedDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(traded, capsys, *command)

    assert status == 0, err
    assert out.strip() and max(len(line) for line in out.splitlines()) <= 80
    assert traded.paper_book in out and traded.broker_book in out


def test_status_table_shows_each_open_position_unbroken(
    traded: TradedDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(traded, capsys, "status", "--book", traded.paper_book)

    db = Database(traded.path)
    try:
        book = views.book_status(db, traded.paper_book, now=traded.last_cycle_at)
    finally:
        db.dispose()
    assert status == 0 and book.positions
    rows = [line for line in out.splitlines() if line.strip().startswith(("BTC/", "ETH/"))]
    assert len(rows) == len(book.positions)
    for row, position in zip(rows, book.positions, strict=True):
        cells = row.split()
        assert cells[0] == position.symbol
        assert Decimal(cells[1]) == position.quantity
        assert Decimal(cells[-1]) == round(position.unrealized_pnl, 2)
    assert "guard            clear" in out and "last run         succeeded" in out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_json_is_parseable_and_exact(
    command: list[str], traded: TradedDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(traded, capsys, *command, "--json")

    assert status == 0
    data = json.loads(out)
    assert isinstance(data, list) and data


def test_status_json_carries_the_unrealized_pnl_of_each_position(
    traded: TradedDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _run(traded, capsys, "status", "--book", traded.broker_book, "--json")

    (book,) = json.loads(out)
    assert book["positions"]
    for position in book["positions"]:
        quantity, entry = Decimal(position["quantity"]), Decimal(position["avg_entry_price"])
        mark = Decimal(position["mark_price"])
        assert Decimal(position["unrealized_pnl"]) == quantity * (mark - entry)
    assert Decimal(book["unrealized_pnl"]) == sum(
        Decimal(p["unrealized_pnl"]) for p in book["positions"]
    )


def test_trades_filters_reach_the_rows(
    traded: TradedDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    _, everything, _ = _run(traded, capsys, "trades", "--json", "--limit", "10000")
    _, eth_paper, _ = _run(
        traded,
        capsys,
        "trades",
        "--json",
        "--symbol",
        "eth/usdt",
        "--book",
        traded.paper_book,
        "--since",
        "2026-06-01T13:00",
        "--until",
        "2026-06-01T15:00:00+00:00",
    )

    rows = json.loads(eth_paper)
    assert rows and len(rows) < len(json.loads(everything))
    assert {(r["symbol"], r["book"]) for r in rows} == {("ETH/USDT", traded.paper_book)}
    assert all("2026-06-01T13:00" <= r["at"] <= "2026-06-01T15:00:30+00:00" for r in rows)


def test_equity_plot_writes_a_png(
    traded: TradedDatabase, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "equity.png"

    status, out, err = _run(traded, capsys, "equity", "--plot", str(target))

    assert status == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 10_000
    assert f"equity plot written to {target}" in out


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["trades", "--since", "last tuesday"], "--since"),
        (["orders", "--until", "2026-13-45"], "--until"),
        (["trades", "--since", "1d", "--until", "2d"], "--since"),
        (["orders", "--symbol", "BTCUSDT"], "--symbol"),
        (["status", "--book", "nope"], "--book"),
        (["trades", "--limit", "0"], "--limit"),
        (["equity", "--plot", "equity.jpg"], "--plot"),
    ],
)
def test_a_bad_filter_is_one_line_and_exit_2(
    args: list[str], names: str, traded: TradedDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(traded, capsys, *args)

    assert status == 2
    assert len(err.strip().splitlines()) == 1 and names in err and "Traceback" not in err
    assert out == ""


def test_a_missing_database_is_refused_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.db"

    status = main(["--db", str(missing), "status"])

    err = capsys.readouterr().err
    assert status == 2 and "no database at" in err and len(err.strip().splitlines()) == 1
    assert not missing.exists()
