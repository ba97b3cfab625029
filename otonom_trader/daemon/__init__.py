"""The trading daemon: ``TradingDaemon``, ``ExecutionMode`` and the cycle's steps."""

from otonom_trader.daemon.daemon import TradingDaemon
from otonom_trader.daemon.summary import RunSummary
from otonom_trader.mode import ExecutionMode

__all__ = ["ExecutionMode", "RunSummary", "TradingDaemon"]
