"""The equity PNG: a real PNG file, one line per book, and a plain message when empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from otonom_trader.persistence import Database
from otonom_trader.shadow.report import equity_figure, plot_equity_curves

from .conftest import Example

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_equity_curves_writes_a_png_file(example: Example, tmp_path: Path) -> None:
    # Arrange
    target = tmp_path / "reports" / "equity.png"

    # Act
    written = plot_equity_curves(example.db, target, since=example.since, until=example.until)

    # Assert
    assert written == target
    data = target.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 500)


def test_equity_figure_draws_one_line_per_book_with_the_window_equity(example: Example) -> None:
    # Act
    figure = equity_figure(example.db, since=example.since, until=example.until)

    # Assert
    (axes,) = figure.axes
    lines = axes.get_lines()
    assert [line.get_label() for line in lines] == ["paper", "broker"]
    # Opening snapshot at the window start, then the one inside; later snapshots excluded.
    assert [float(y) for y in lines[0].get_ydata()] == [10000.0, 10050.0]
    assert [float(y) for y in lines[1].get_ydata()] == [10000.0, 10020.0]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["paper", "broker"]


def test_plot_with_no_snapshots_still_writes_a_png_saying_nothing_to_plot(
    sqlite_db: Database, tmp_path: Path
) -> None:
    # Arrange: a database without any portfolio snapshot
    until = datetime(2025, 3, 1, tzinfo=UTC)
    since = until - timedelta(days=7)

    # Act
    figure = equity_figure(sqlite_db, since=since, until=until)
    written = plot_equity_curves(sqlite_db, tmp_path / "empty.png", since=since, until=until)

    # Assert
    (axes,) = figure.axes
    assert axes.get_lines() == []
    assert any("nothing to plot" in text.get_text() for text in axes.texts)
    assert written.read_bytes()[:8] == PNG_SIGNATURE
