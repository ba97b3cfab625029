"""Configuration errors: one line that names the key and what is wrong with it."""

from __future__ import annotations

import dataclasses
from enum import StrEnum
from typing import Any, TypeVar

E = TypeVar("E", bound=StrEnum)


class ConfigError(ValueError):
    """A bad configuration value, key, override or file. ``str(err)`` is a single line."""

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        line = " ".join(message.split())
        super().__init__(f"{key}: {line}" if key else line)


class ConfigValueError(ConfigError):
    """Raised by a config dataclass's ``__post_init__``; ``field`` names the offending key.

    The composer prefixes the path of the node (``guardrails.``), so users see the full key.
    A ``ConfigError`` itself, so a dataclass built by hand (``GuardrailConfig(enabled="no")``)
    fails the way a bad file or override does.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message, key=field)


def require(condition: bool, field: str, message: str) -> None:
    """Raise ``ConfigValueError(field, message)`` unless ``condition`` holds."""
    if not condition:
        raise ConfigValueError(field, message)


def require_booleans(config: Any) -> None:
    """Every field annotated ``bool`` must hold a real ``bool``.

    Hydra and OmegaConf convert ``"false"`` to ``False`` for such fields, but a dataclass built
    in Python is not converted: ``GuardrailConfig(enabled="false")`` would be silently truthy.
    """
    for item in dataclasses.fields(config):
        if item.type not in ("bool", bool):
            continue
        value = getattr(config, item.name)
        if not isinstance(value, bool):
            raise ConfigValueError(
                item.name, f"must be true or false (a bool), got {type(value).__name__} {value!r}"
            )


def require_pct(value: float, field: str, *, allow_zero: bool = False) -> None:
    """A percentage must be within (0, 100] (or [0, 100] with ``allow_zero``)."""
    low_ok = value >= 0 if allow_zero else value > 0
    bounds = "[0, 100]" if allow_zero else "(0, 100]"
    require(low_ok and value <= 100, field, f"must be a percentage in {bounds}, got {value}")


def parse_choice(value: str, choices: type[E], field: str) -> E:
    """Parse ``value`` into one of ``choices`` or name the allowed values.

    Config schemas type such fields as ``str`` (OmegaConf matches enums by member *name*, so
    ``paper`` would not match ``PAPER``) and convert here, in ``__post_init__``.
    """
    try:
        return choices(str(value).lower())
    except ValueError:
        allowed = ", ".join(member.value for member in choices)
        raise ConfigValueError(field, f"must be one of {allowed}, got {value!r}") from None
