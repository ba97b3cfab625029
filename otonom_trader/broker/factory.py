"""``build_broker``: a Broker from the guide's ``broker.yaml`` or from the Hydra ``broker`` group.

The file format is the guide's::

    kind: binance            # sim, or any ccxt exchange id (binance, bybit, ...)
    api_key: "..."           # or ${oc.env:BINANCE_API_KEY}; better: leave it out and set
    api_secret: "..."        #   BINANCE_API_KEY / BINANCE_API_SECRET in the environment
    base_url: "https://testnet.binance.vision"
    testnet: true

Any other ``BrokerConfig`` field may appear too. ``${oc.env:VAR}`` interpolations are resolved
here, where the secret is used, and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from otonom_trader.broker.base import Broker
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.config.errors import ConfigError
from otonom_trader.config.files import read_yaml_file


def load_broker_config(path: str | Path) -> BrokerConfig:
    """Read and validate a ``broker.yaml``; errors name the file and the key.

    ``kind`` is required: an empty file must not quietly mean the simulated exchange.
    """
    file = Path(path).expanduser()
    if not file.exists():
        raise ConfigError(f"broker config file not found: {file}", key="broker_config")
    data = read_yaml_file(file, "broker config file")
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            f"{file}: expected a mapping of broker settings with at least 'kind' "
            "(sim, binance, bybit, ...)"
        )
    if "kind" not in data:
        raise ConfigError(
            "is required (sim, or a ccxt exchange id: binance, bybit, ...)", key=f"{file}: kind"
        )
    from otonom_trader.config.compose import build_structured
    from otonom_trader.config.validation import check_broker_values

    cfg = build_structured(BrokerConfig, data, prefix=f"{file}: ")
    check_broker_values(cfg, label=f"{file}: ")
    _fill_keys_from_environment(cfg)
    return cfg


def _fill_keys_from_environment(cfg: BrokerConfig) -> None:
    """Keys left out of the file come from ``<KIND>[_TESTNET]_API_KEY`` / ``…_API_SECRET``."""
    prefix = cfg.kind.upper() + ("_TESTNET" if cfg.testnet else "")
    if not cfg.api_key:
        cfg.api_key = os.environ.get(f"{prefix}_API_KEY") or None
    if not cfg.api_secret:
        cfg.api_secret = os.environ.get(f"{prefix}_API_SECRET") or None


def build_broker(
    config: str | Path | BrokerConfig | Any,
    *,
    state_path: str | Path | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Broker:
    """Build the Broker a config names: ``kind: sim`` → the simulated exchange; anything else
    is a ccxt exchange id → ``CcxtBroker``. Accepts a file path or a ``BrokerConfig``.

    The one builder of venues: the guide's API, the daemon and the fire drill all come here.
    ``state_path`` is where the simulated exchange keeps its account (``None``: in memory only)
    and ``clock`` its time."""
    cfg = config if isinstance(config, BrokerConfig) else None
    if cfg is None and isinstance(config, str | Path):
        cfg = load_broker_config(config)
    if cfg is None:
        raise TypeError(f"build_broker takes a path or a BrokerConfig, not {type(config).__name__}")
    if cfg.kind == "sim":
        from otonom_trader.broker.sim import SimulatedExchange

        return SimulatedExchange(
            cfg.sim, quote_asset=cfg.quote_asset, state_path=state_path, clock=clock
        )
    from otonom_trader.broker.ccxt_broker import CcxtBroker

    return CcxtBroker(cfg)
