"""Strategies: versioned YAML rules, indicators, signals and intents."""

from otonom_trader.strategy.model import Strategy, StrategyError, load_strategy
from otonom_trader.strategy.signals import Action, OrderIntent, Signal, evaluate, size_intent

__all__ = [
    "Action",
    "OrderIntent",
    "Signal",
    "Strategy",
    "StrategyError",
    "evaluate",
    "load_strategy",
    "size_intent",
]
