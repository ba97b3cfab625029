"""The strategy file: versioned YAML with entry/exit rules, sizing and risk exits.

Schema (documented for users in ``strategies/README.md``)::

    name: baseline                 # required, text
    version: "1.0"                 # required, text (quote it: 1.10 is not 1.1)
    symbols: [BTC/USDT, ETH/USDT]  # required, at least one
    timeframe: 1h                  # required: 1m 5m 15m 1h 4h 1d ...
    entry:                         # ALL conditions must hold to open a long position
      - {indicator: ema_cross, fast: 12, slow: 26, direction: up}
      - {indicator: rsi, period: 14, below: 70}
    exit:                          # ANY condition closes the position
      - {indicator: ema_cross, fast: 12, slow: 26, direction: down}
    sizing:
      mode: pct_equity             # fixed_quote | pct_equity
      value: 10                    # quote amount (fixed_quote) or % of equity (pct_equity)
      max_position_quote: 2000     # never hold more than this (quote) per symbol
    risk:                          # optional
      stop_loss_pct: 3             # close when price is 3 % under the average entry
      take_profit_pct: 6

Conditions: ``sma_cross`` / ``ema_cross`` (fast, slow, direction up|down: the fast average
crosses the slow one on the latest closed candle), ``sma_above`` / ``ema_above`` (state: fast
above slow; ``below`` for the opposite), ``rsi`` (period, ``below`` and/or ``above``),
``breakout`` (lookback, direction up|down: the close breaks the high/low of the previous N bars).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otonom_trader.config.errors import ConfigError
from otonom_trader.config.files import read_yaml_file
from otonom_trader.market.candles import timeframe_seconds
from otonom_trader.market.symbols import to_unified

INDICATORS: dict[str, dict[str, type]] = {
    # indicator → allowed parameters and their types (required ones checked below)
    "sma_cross": {"fast": int, "slow": int, "direction": str},
    "ema_cross": {"fast": int, "slow": int, "direction": str},
    "sma_above": {"fast": int, "slow": int, "direction": str},
    "ema_above": {"fast": int, "slow": int, "direction": str},
    "rsi": {"period": int, "below": float, "above": float},
    "breakout": {"lookback": int, "direction": str},
}
REQUIRED_PARAMS = {
    "sma_cross": ("fast", "slow", "direction"),
    "ema_cross": ("fast", "slow", "direction"),
    "sma_above": ("fast", "slow"),
    "ema_above": ("fast", "slow"),
    "rsi": ("period",),
    "breakout": ("lookback", "direction"),
}
# Bounds a sane strategy stays far inside; beyond them a value is a typo, not a choice.
MAX_NUMBER = 1e15
MAX_QUOTE = 1e12  # quote currency per order or position
MAX_LOOKBACK = 5_000  # candles an indicator may look back (data.history_bars is at most 10,000)
MAX_SYMBOLS = 100
TEXT_LIMITS = {"name": 100, "version": 40, "description": 2_000}
_SYMBOL = re.compile(r"[A-Z0-9]{1,20}/[A-Z0-9]{1,20}")
TOP_LEVEL = {
    "name",
    "version",
    "description",
    "symbols",
    "timeframe",
    "entry",
    "exit",
    "sizing",
    "risk",
    "parameters",
}
#: ``$name`` in a rule, sizing or risk value reads the strategy's parameter ``name``.
_PARAMETER_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]{0,39})")
MAX_PARAMETERS = 50
_PARAMETRIZED = ("entry", "exit", "sizing", "risk")


class StrategyError(ConfigError):
    """A strategy file problem; the message names the file and the key."""


@dataclass(frozen=True)
class Condition:
    """One rule: an indicator and its parameters."""

    indicator: str
    params: dict[str, Any]

    @property
    def lookback(self) -> int:
        """Candles this condition needs before it can be evaluated."""
        p = self.params
        if self.indicator == "rsi":
            return int(p["period"]) + 2
        if self.indicator == "breakout":
            return int(p["lookback"]) + 1
        return int(p["slow"]) + 2

    def describe(self) -> str:
        """``ema_cross(fast=12, slow=26, direction=up)``."""
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.indicator}({args})"


@dataclass(frozen=True)
class Sizing:
    """How much to buy: a fixed quote amount or a % of equity, capped per position."""

    mode: str
    value: float
    max_position_quote: float | None


@dataclass(frozen=True)
class Risk:
    """Optional protective exits against the average entry price."""

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None


@dataclass(frozen=True)
class Strategy:
    """A validated strategy file."""

    name: str
    version: str
    symbols: tuple[str, ...]
    timeframe: str
    entry: tuple[Condition, ...]
    exit: tuple[Condition, ...]
    sizing: Sizing
    risk: Risk
    path: str
    description: str = ""
    #: The named parameters, with any override applied (``strategy.params.NAME=VALUE``).
    parameters: tuple[tuple[str, float], ...] = ()

    @property
    def required_history(self) -> int:
        """Closed candles the slowest rule needs."""
        return max(c.lookback for c in (*self.entry, *self.exit))


def load_strategy(path: str | Path, overrides: dict[str, Any] | None = None) -> Strategy:
    """Read and validate a strategy YAML. Every error names the file and the key.

    ``overrides`` set declared parameters (``{"fast": 8}``); naming an undeclared one is an
    error."""
    data = read_yaml_file(path, "strategy file", StrategyError)
    return parse_strategy(data, str(Path(path)), overrides)


def parse_strategy(data: Any, source: str, overrides: dict[str, Any] | None = None) -> Strategy:
    """Validate an already-parsed strategy mapping; ``source`` names it in errors."""

    def fail(key: str, message: str) -> StrategyError:
        return StrategyError(f"{source}: {key}: {message}")

    if not isinstance(data, dict):
        raise StrategyError(f"{source}: expected a mapping with name, version, symbols, ...")
    unknown = sorted(str(key) for key in set(data) - TOP_LEVEL)
    if unknown:
        raise fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(TOP_LEVEL))})")
    parameters = _parameters(data.get("parameters"), overrides or {}, fail)
    data = {
        k: _substitute(v, parameters, k, fail) if k in _PARAMETRIZED else v
        for k, v in data.items()
        if k != "parameters"
    }
    for key in ("name", "version", "symbols", "timeframe", "entry", "exit", "sizing"):
        if key not in data or data[key] in (None, "", []):
            raise fail(key, "is required")
    version = data["version"]
    if isinstance(version, float):
        # YAML reads 1.10 as the float 1.1: two different versions would look the same.
        raise fail("version", f'must be text: write version: "{version}" (quoted)')
    if not isinstance(version, str | int) or isinstance(version, bool):
        raise fail("version", f'must be text like "1.0", got {version!r}')
    for key, longest in TEXT_LIMITS.items():
        text = data.get(key)
        if text is not None and key != "version" and not isinstance(text, str):
            raise fail(key, f"must be text, got {text!r}")
        if text is not None and len(str(text)) > longest:
            raise fail(key, f"must be at most {longest} characters, got {len(str(text))}")
    symbols = data["symbols"]
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise fail("symbols", "must be a list of symbols like BTC/USDT")
    if len(symbols) > MAX_SYMBOLS:
        raise fail("symbols", f"lists {len(symbols)} symbols; expected at most {MAX_SYMBOLS}")
    try:
        unified = tuple(to_unified(s) for s in symbols)
    except ValueError as exc:
        raise fail("symbols", str(exc)) from None
    for raw_symbol, symbol in zip(symbols, unified, strict=True):
        if not _SYMBOL.fullmatch(symbol):
            raise fail("symbols", f"{raw_symbol!r} is not a symbol like BTC/USDT (BASE/QUOTE)")
    repeated = sorted({s for s in unified if unified.count(s) > 1})
    if repeated:
        raise fail("symbols", f"lists {', '.join(repeated)} more than once")
    try:
        timeframe_seconds(str(data["timeframe"]))
    except ValueError as exc:
        raise fail("timeframe", str(exc)) from None
    entry = _conditions(data["entry"], "entry", fail)
    exit_ = _conditions(data["exit"], "exit", fail)
    return Strategy(
        name=str(data["name"]),
        version=str(data["version"]),
        symbols=unified,
        timeframe=str(data["timeframe"]),
        entry=entry,
        exit=exit_,
        sizing=_sizing(data["sizing"], fail),
        risk=_risk(data.get("risk") or {}, fail),
        path=source,
        description=str(data.get("description") or ""),
        parameters=tuple(parameters.items()),
    )


def _parameters(raw: Any, overrides: dict[str, Any], fail: Any) -> dict[str, float]:
    """The declared parameters (``parameters: {fast: 12}``) with ``overrides`` applied."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise fail("parameters", "must be a mapping of names to numbers, e.g. {fast: 12}")
    if len(raw) > MAX_PARAMETERS:
        raise fail("parameters", f"declares {len(raw)}; expected at most {MAX_PARAMETERS}")
    values: dict[str, float] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _PARAMETER_REF.fullmatch(f"${name}"):
            raise fail(f"parameters.{name}", "must be a name of letters, digits and _")
        values[name] = _number(value, f"parameters.{name}", float, fail)
    for name, value in overrides.items():
        if name not in values:
            declared = ", ".join(values) or "none"
            raise fail(f"parameters.{name}", f"is not a declared parameter (declared: {declared})")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise fail(f"parameters.{name}", f"must be a number, got {value!r}") from None
        values[name] = _number(value, f"parameters.{name}", float, fail)
    return {k: int(v) if float(v).is_integer() else v for k, v in values.items()}


def _substitute(value: Any, parameters: dict[str, float], key: str, fail: Any) -> Any:
    """``value`` with every ``$name`` replaced by that parameter's value."""
    if isinstance(value, dict):
        return {k: _substitute(v, parameters, f"{key}.{k}", fail) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, parameters, f"{key}[{i}]", fail) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("$"):
        match = _PARAMETER_REF.fullmatch(value)
        if match is None or match.group(1) not in parameters:
            declared = ", ".join(parameters) or "none"
            raise fail(key, f"{value!r} names no declared parameter (declared: {declared})")
        return parameters[match.group(1)]
    return value


def _number(value: Any, key: str, kind: type, fail: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(key, f"must be a number, got {value!r}")
    if not -MAX_NUMBER <= value <= MAX_NUMBER:  # also False for NaN
        raise fail(key, f"must be a finite number of at most {MAX_NUMBER:g}, got {value!r}")
    if kind is int and int(value) != value:
        raise fail(key, f"must be a whole number, got {value!r}")
    return kind(value)


def _conditions(raw: Any, section: str, fail: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, list) or not raw:
        raise fail(section, "must be a non-empty list of conditions")
    out = []
    for i, item in enumerate(raw):
        key = f"{section}[{i}]"
        if not isinstance(item, dict) or "indicator" not in item:
            raise fail(key, "must be a mapping with an 'indicator'")
        name = item["indicator"]
        if not isinstance(name, str) or name not in INDICATORS:
            raise fail(
                f"{key}.indicator", f"unknown indicator {name!r} (known: {', '.join(INDICATORS)})"
            )
        allowed = INDICATORS[name]
        params: dict[str, Any] = {}
        for param, value in item.items():
            if param == "indicator":
                continue
            if not isinstance(param, str) or param not in allowed:
                raise fail(
                    f"{key}.{param}", f"not a parameter of {name} (allowed: {', '.join(allowed)})"
                )
            if allowed[param] is str:
                params[param] = str(value)
            else:
                params[param] = _number(value, f"{key}.{param}", allowed[param], fail)
        for param in REQUIRED_PARAMS[name]:
            if param not in params:
                raise fail(f"{key}.{param}", f"is required for {name}")
        _check_condition(name, params, key, fail)
        out.append(Condition(name, params))
    return tuple(out)


def _check_condition(name: str, p: dict[str, Any], key: str, fail: Any) -> None:
    for param in ("fast", "slow", "period", "lookback"):
        if param in p and not 1 <= p[param] <= MAX_LOOKBACK:
            raise fail(f"{key}.{param}", f"must be in 1..{MAX_LOOKBACK} candles, got {p[param]}")
    if "fast" in p and p["fast"] >= p["slow"]:
        raise fail(f"{key}.fast", f"must be smaller than slow ({p['fast']} >= {p['slow']})")
    if "direction" in p:
        allowed = ("above", "below") if name.endswith("_above") else ("up", "down")
        if p["direction"] not in allowed:
            raise fail(
                f"{key}.direction", f"must be {' or '.join(allowed)}, got {p['direction']!r}"
            )
    if name == "rsi":
        if "below" not in p and "above" not in p:
            raise fail(f"{key}", "rsi needs 'below' and/or 'above'")
        for bound in ("below", "above"):
            if bound in p and not 0 <= p[bound] <= 100:
                raise fail(f"{key}.{bound}", f"must be within 0..100, got {p[bound]}")
        if "below" in p and "above" in p and p["above"] >= p["below"]:
            raise fail(
                f"{key}.above",
                f"must be smaller than below ({p['above']} >= {p['below']}): "
                "the condition could never hold",
            )


def _sizing(raw: Any, fail: Any) -> Sizing:
    if not isinstance(raw, dict):
        raise fail("sizing", "must be a mapping with mode and value")
    unknown = sorted(set(raw) - {"mode", "value", "max_position_quote"})
    if unknown:
        raise fail(f"sizing.{unknown[0]}", "unknown key (allowed: mode, value, max_position_quote)")
    mode = raw.get("mode")
    if mode is None:
        raise fail("sizing.mode", "is required (fixed_quote or pct_equity)")
    if mode not in ("fixed_quote", "pct_equity"):
        raise fail("sizing.mode", f"must be fixed_quote or pct_equity, got {mode!r}")
    if "value" not in raw:
        raise fail("sizing.value", "is required")
    value = _number(raw["value"], "sizing.value", float, fail)
    if value <= 0 or value > (100 if mode == "pct_equity" else MAX_QUOTE):
        limit = "in (0, 100]" if mode == "pct_equity" else f"in (0, {MAX_QUOTE:g}]"
        raise fail("sizing.value", f"must be {limit}, got {value}")
    cap = raw.get("max_position_quote")
    if cap is not None:
        cap = _number(cap, "sizing.max_position_quote", float, fail)
        if not 0 < cap <= MAX_QUOTE:
            raise fail("sizing.max_position_quote", f"must be in (0, {MAX_QUOTE:g}], got {cap}")
    return Sizing(mode, value, cap)


def _risk(raw: Any, fail: Any) -> Risk:
    if not isinstance(raw, dict):
        raise fail("risk", "must be a mapping")
    unknown = sorted(set(raw) - {"stop_loss_pct", "take_profit_pct"})
    if unknown:
        raise fail(f"risk.{unknown[0]}", "unknown key (allowed: stop_loss_pct, take_profit_pct)")
    values: dict[str, float | None] = {}
    for key in ("stop_loss_pct", "take_profit_pct"):
        value = raw.get(key)
        if value is not None:
            value = _number(value, f"risk.{key}", float, fail)
            if not 0 < value <= 100:
                raise fail(f"risk.{key}", f"must be in (0, 100], got {value}")
        values[key] = value
    return Risk(**values)
