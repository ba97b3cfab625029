"""A backtest's ``metrics.json`` as evidence for the research → paper gate.

The backtest (``otonom-trader backtest … --out DIR``) writes ``DIR/metrics.json`` with the
strategy's name, version and ``strategy_hash`` (SHA-256 of the strategy file's bytes), the span
it covered and its metrics; ``out_of_sample`` holds the same metrics for the walk-forward's
out-of-sample windows. Evidence is accepted only for the file it was computed on: a metrics file
of another version (another hash) is refused, because an edited strategy is another strategy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otonom_trader.config.errors import ConfigError
from otonom_trader.promotion.stages import StrategyIdentity

#: Keys a metrics.json must have (``out_of_sample`` is optional: the gate says it is missing).
REQUIRED_KEYS = (
    "strategy_name",
    "strategy_version",
    "strategy_hash",
    "span_start",
    "span_end",
    "span_days",
    "trades",
    "max_drawdown",
    "profit_factor",
)
_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class BacktestEvidence:
    """The numbers the research gate reads from a backtest's metrics."""

    source: str
    strategy_hash: str
    span_start: str
    span_end: str
    span_days: float
    trades: int
    max_drawdown: float
    profit_factor: float | None
    oos_profit_factor: float | None
    oos_trades: int | None

    def to_json(self) -> dict[str, Any]:
        """What is stored in ``promotion_evidence.data_json``."""
        return {
            "strategy_hash": self.strategy_hash,
            "span_start": self.span_start,
            "span_end": self.span_end,
            "span_days": self.span_days,
            "trades": self.trades,
            "max_drawdown": self.max_drawdown,
            "profit_factor": self.profit_factor,
            "oos_profit_factor": self.oos_profit_factor,
            "oos_trades": self.oos_trades,
        }

    @classmethod
    def from_json(cls, source: str, data: dict[str, Any]) -> BacktestEvidence:
        """Back from ``promotion_evidence.data_json``."""
        return cls(source=source, **data)


def load_backtest_metrics(path: str | Path, strategy: StrategyIdentity) -> BacktestEvidence:
    """Read ``metrics.json`` and check it belongs to ``strategy`` (name, version, hash).

    Every problem is one ``ConfigError`` naming the file and the key: not found, not JSON, a
    missing or non-numeric key, a hash of another file.
    """
    where = str(path)
    try:
        raw = Path(path).read_bytes()[: _MAX_BYTES + 1]
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the backtest metrics ({exc.strerror})") from None
    if len(raw) > _MAX_BYTES:
        raise ConfigError(f"{where}: larger than {_MAX_BYTES} bytes; not a metrics.json")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object of backtest metrics")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ConfigError(f"{where}: {missing[0]}: missing (is this a backtest's metrics.json?)")
    if str(data["strategy_hash"]) != strategy.sha256:
        raise ConfigError(
            f"{where}: strategy_hash {str(data['strategy_hash'])[:12]}… is not the hash of "
            f"{strategy.path} ({strategy.sha256[:12]}…): the backtest ran another version of "
            "the file; run it again on this one"
        )
    for key, expected in (("strategy_name", strategy.name), ("strategy_version", strategy.version)):
        if str(data[key]) != expected:
            raise ConfigError(f"{where}: {key}: {data[key]!r}, but the strategy says {expected!r}")
    oos = data.get("out_of_sample")
    if oos is not None and not isinstance(oos, dict):
        raise ConfigError(f"{where}: out_of_sample: expected an object of metrics")
    return BacktestEvidence(
        source=where,
        strategy_hash=strategy.sha256,
        span_start=str(data["span_start"]),
        span_end=str(data["span_end"]),
        span_days=_number(data, "span_days", where),
        trades=int(_number(data, "trades", where)),
        max_drawdown=_number(data, "max_drawdown", where),
        profit_factor=_optional_number(data, "profit_factor", where),
        oos_profit_factor=_optional_number(oos, "profit_factor", where, "out_of_sample.")
        if oos is not None
        else None,
        oos_trades=int(_number(oos, "trades", where, "out_of_sample."))
        if oos is not None and "trades" in oos
        else None,
    )


def _number(data: dict[str, Any], key: str, where: str, prefix: str = "") -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: {prefix}{key}: expected a finite number, got {value!r}")
    return float(value)


def _optional_number(data: dict[str, Any], key: str, where: str, prefix: str = "") -> float | None:
    """A profit factor may be ``null`` (no losing trade: infinite) or absent."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{where}: {prefix}{key}: expected a number or null, got {value!r}")
    return float(value)
