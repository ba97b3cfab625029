"""Configuration: typed schema, composition from override strings, one-line errors.

Domain packages import ``otonom_trader.config.errors`` while the schema imports the domain
packages' config classes, so the heavier names here load lazily to keep imports acyclic.
"""

from __future__ import annotations

from typing import Any

from otonom_trader.config.errors import ConfigError

_LAZY = {
    "CONFIG_DIR": "otonom_trader.config.compose",
    "PROJECT_ROOT": "otonom_trader.config.compose",
    "compose_raw": "otonom_trader.config.compose",
    "config_hash": "otonom_trader.config.compose",
    "load_config": "otonom_trader.config.compose",
    "to_app_config": "otonom_trader.config.compose",
    "AppConfig": "otonom_trader.config.schema",
    "otonom_home": "otonom_trader.config.schema",
}

__all__ = ["ConfigError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
