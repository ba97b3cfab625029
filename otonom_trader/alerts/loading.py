"""Reading the guide's ``config/alerts.yaml`` into an ``AlertsConfig``.

The file has the guide's shape (``email:``, ``telegram:``, plus any ``AlertsConfig`` key such as
``urls:`` or ``routes:``); ``${oc.env:VAR}`` pulls secrets from the environment. Every problem
is one line naming the file and the key: ``config/alerts.yaml: email.smtp_port: must be a port``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from otonom_trader.alerts.config import AlertsConfig
from otonom_trader.config.errors import ConfigError, ConfigValueError


def load_alerts_file(path: str | Path) -> AlertsConfig:
    """Parse, type-check, resolve and validate an alerts YAML file.

    Raises ``ConfigError`` (one line with the file and the key) for a missing file, bad YAML,
    an unknown key, a wrong type, an unset environment variable or a refused value.
    """
    where = str(path)
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError("file not found (copy config/alerts.yaml.example)", key=where)
    try:
        raw = OmegaConf.load(file)
    except (yaml.YAMLError, OmegaConfBaseException) as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConfigError(f"not valid YAML: {first}", key=where) from None
    if not isinstance(raw, DictConfig):
        raise ConfigError("must be a mapping (email:, telegram:, urls: …)", key=where)
    if set(raw.keys()) == {"alerts"}:  # tolerate the whole file nested under `alerts:`
        node = raw.alerts
        if not isinstance(node, DictConfig):
            raise ConfigError("must be a mapping", key=f"{where}: alerts")
        raw = node
    try:
        merged = OmegaConf.merge(OmegaConf.structured(AlertsConfig), raw)
        config = OmegaConf.to_object(merged)
    except ConfigValueError:
        raise _locate_value_error(raw, where) from None
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        message = getattr(exc, "msg", None) or str(exc)
        first = next((ln.strip() for ln in str(message).splitlines() if ln.strip()), "invalid")
        raise ConfigError(first, key=f"{where}: {key}" if key else where) from None
    assert isinstance(config, AlertsConfig)
    return config


def _locate_value_error(raw: DictConfig, where: str) -> ConfigError:
    """Name the section (``email``, ``telegram``, ``routes.x``) whose values are refused."""
    from otonom_trader.alerts.config import (
        AlertRouteConfig,
        EmailAlertConfig,
        TelegramAlertConfig,
    )

    sections: list[tuple[str, type[Any], Any]] = [
        ("email", EmailAlertConfig, raw.get("email")),
        ("telegram", TelegramAlertConfig, raw.get("telegram")),
    ]
    routes = raw.get("routes")
    if isinstance(routes, DictConfig):
        sections += [(f"routes.{k!s}", AlertRouteConfig, v) for k, v in routes.items()]
    for prefix, schema, node in sections:
        if node is None:
            continue
        try:
            OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))
        except ConfigValueError as exc:
            return ConfigError(str(exc).split(": ", 1)[1], key=f"{where}: {prefix}.{exc.field}")
        except OmegaConfBaseException:
            continue
    try:
        OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(AlertsConfig), raw))
    except ConfigValueError as exc:
        return ConfigError(str(exc).split(": ", 1)[1], key=f"{where}: {exc.field}")
    except OmegaConfBaseException as exc:
        return ConfigError(str(exc).splitlines()[0], key=where)
    return ConfigError("invalid value", key=where)
