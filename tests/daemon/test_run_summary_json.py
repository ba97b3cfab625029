"""What a run stores as its summary: bounded for many symbols (held symbols counted by reason),
every decision that did something kept in full."""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import Decimal

from otonom_trader.daemon.summary import BookLine, OrderLine, RunSummary, SignalLine


def _hundred_symbol_summary() -> RunSummary:
    summary = RunSummary("r" * 32, "paper", "sim (simulated exchange)", "synthetic", "b v1.0")
    for i in range(100):
        reason = "flat; entry conditions not all met" if i % 3 else "long; no exit condition"
        summary.signals.append(SignalLine(f"SYM{i:02d}/USDT", "hold", reason, Decimal("1.2345")))
    summary.signals.append(SignalLine("BTC/USDT", "buy", "ema cross up", Decimal("60000")))
    summary.orders.append(
        OrderLine(
            "paper",
            "BTC/USDT",
            "buy",
            Decimal("0.01"),
            "filled",
            Decimal("0.01"),
            Decimal("60030"),
            Decimal("0.6"),
            "cid-1",
        )
    )
    summary.books.append(BookLine("paper", Decimal("10000"), Decimal("9399.4"), 1, Decimal("1e4")))
    return summary


def test_summary_when_a_hundred_symbols_hold_then_stored_bounded_and_complete() -> None:
    summary = _hundred_symbol_summary()

    stored = json.loads(summary.to_json())

    assert len(summary.to_json()) < 2_500  # was 11.9 KB with every held symbol in full
    assert len(json.dumps(asdict(summary), default=str)) > 11_000  # the unbounded form
    assert stored["signals"] == [
        {"symbol": "BTC/USDT", "action": "buy", "reason": "ema cross up", "price": "60000"}
    ]
    held = stored["signals_held"]
    assert sorted(s for symbols in held.values() for s in symbols) == [
        f"SYM{i:02d}/USDT" for i in range(100)
    ]
    assert len(held["long; no exit condition"]) == 34
    assert stored["orders"][0]["client_order_id"] == "cid-1"
    assert stored["books"][0]["cash"] == "9399.4"


def test_a_stored_summary_read_back_shows_its_held_symbols() -> None:
    from rich.console import Console

    summary = _hundred_symbol_summary()

    again = RunSummary.from_json(summary.to_json())
    out = Console(width=120, record=True)
    again.render(out)
    printed = out.export_text()

    assert again.signal_count == summary.signal_count == 101
    assert again.headline() == summary.headline()
    assert "BTC/USDT" in printed and "ema cross up" in printed
    assert "66 symbols: SYM01/USDT, SYM02/USDT, SYM04/USDT" in printed
    assert "flat; entry conditions not all met" in printed
    assert "long; no exit condition" in printed
    assert RunSummary.from_json(again.to_json()).signals_held == again.signals_held
