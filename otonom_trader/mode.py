"""Execution modes: where the daemon's orders go."""

from __future__ import annotations

from enum import StrEnum


class ExecutionMode(StrEnum):
    """PAPER: paper book only. SHADOW: paper book and broker, same orders, side by side.
    LIVE: broker only (paper book optional, for logging)."""

    PAPER = "paper"
    SHADOW = "shadow"
    LIVE = "live"

    @property
    def uses_broker(self) -> bool:
        """True when real (or simulated-exchange) orders are sent."""
        return self is not ExecutionMode.PAPER
