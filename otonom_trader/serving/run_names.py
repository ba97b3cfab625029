"""Run names that say what ran: ``shadow-binance_testnet-2026-11-29T18:05Z``.

Mode and broker option come from the overrides (``mode=shadow``, ``mode.name=shadow``,
``broker=binance_testnet``), else from the defaults list of ``conf/config.yaml``; the time is
the run's scheduled start (shortly after the candle's close when served), in UTC. Reading the
overrides as text keeps naming free of composing the configuration (the flow does that next).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

GROUP_KEYS = {"mode": ("mode", "mode.name"), "broker": ("broker",)}


def run_name(overrides: list[str], when: datetime, config_dir: Path | None = None) -> str:
    """``<mode>-<broker option>-<YYYY-MM-DDTHH:MMZ>`` for a cycle run with ``overrides``."""
    mode = chosen_option("mode", overrides, config_dir)
    broker = chosen_option("broker", overrides, config_dir)
    return f"{mode}-{broker}-{when.astimezone(UTC):%Y-%m-%dT%H:%MZ}"


def chosen_option(group: str, overrides: list[str], config_dir: Path | None = None) -> str:
    """The option of config ``group`` the overrides pick (the last one wins, as in Hydra),
    else the default of ``conf/config.yaml``."""
    chosen = None
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if sep and key.strip().lstrip("+~") in GROUP_KEYS[group]:
            chosen = value.strip().lower()
    return chosen or _default_options(config_dir).get(group, "default")


@cache
def _default_options(config_dir: Path | None) -> dict[str, str]:
    import yaml

    from otonom_trader.config.compose import CONFIG_DIR

    text = ((config_dir or CONFIG_DIR) / "config.yaml").read_text()
    defaults = yaml.safe_load(text).get("defaults", [])
    return {k: str(v) for item in defaults if isinstance(item, dict) for k, v in item.items()}
