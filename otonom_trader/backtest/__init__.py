"""Backtests: a strategy over history through the daemon's own trading code (see simulator)."""
