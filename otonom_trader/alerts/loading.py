"""Reading the guide's ``config/alerts.yaml`` into an ``AlertsConfig``.

The file has the guide's shape (``email:``, ``telegram:``, plus any ``AlertsConfig`` key such as
``urls:`` or ``routes:``); ``${oc.env:VAR}`` pulls secrets from the environment. Every problem
is one line naming the file and the key: ``config/alerts.yaml: email.smtp_port: must be a port``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from otonom_trader.alerts.config import AlertsConfig
from otonom_trader.config.errors import ConfigError


def load_alerts_file(path: str | Path) -> AlertsConfig:
    """Parse, type-check, resolve and validate an alerts YAML file.

    Raises ``ConfigError`` (one line with the file and the key) for a missing file, bad YAML,
    an unknown key, a wrong type, an unset environment variable or a refused value.
    """
    from otonom_trader.config.files import read_yaml_file

    where = str(path)
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError("file not found (copy config/alerts.yaml.example)", key=where)
    # Size-, nesting- and duplicate-key-bounded, like every file the project reads (the
    # library's AlertEngine("config/alerts.yaml") included, not only the CLI).
    data = read_yaml_file(file, "alerts file")
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping (email:, telegram:, urls: …)", key=where)
    try:
        raw = OmegaConf.create(data)
    except OmegaConfBaseException as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConfigError(f"not a valid alerts file: {first}", key=where) from None
    if set(raw.keys()) == {"alerts"}:  # tolerate the whole file nested under `alerts:`
        node = raw.alerts
        if not isinstance(node, DictConfig):
            raise ConfigError("must be a mapping", key=f"{where}: alerts")
        raw = node
    from otonom_trader.config.compose import build_structured
    from otonom_trader.config.validation import check_values

    alerts = build_structured(AlertsConfig, raw, prefix=f"{where}: ")
    check_values(alerts, "alerts.", label=f"{where}: ")
    return alerts
