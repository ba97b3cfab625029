"""Compose the configuration from override strings: the one entry point of the CLI and the flow.

A Prefect deployment calls the flow with JSON parameters, not argv, so the flow composes with
Hydra's compose API from ``overrides: list[str]``; the command line passes its arguments to the
same function. Composition never creates Hydra output folders and never touches logging.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from otonom_trader.config.errors import ConfigError, ConfigValueError
from otonom_trader.config.schema import AppConfig, register_schema

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"
T = TypeVar("T")


def compose_raw(
    overrides: list[str] | None = None,
    config_dir: Path | None = None,
    *,
    cache_key: str | None = None,
) -> DictConfig:
    """Compose ``conf/config.yaml`` with ``overrides``; interpolations stay unresolved.

    With ``cache_key`` (``compose_cache.composition_key``), a composition stored under that key
    is taken instead of composing again. Raises ``ConfigError`` (one line, naming the key or the
    override) on any problem.
    """
    overrides = list(overrides or [])
    directory = (config_dir or CONFIG_DIR).resolve()
    if not (directory / "config.yaml").is_file():
        raise ConfigError(f"no config.yaml in {directory}", key="config_dir")
    if cache_key is not None:
        from otonom_trader.config.compose_cache import load_composition

        cached = load_composition(cache_key)
        if cached is not None:
            return cached
    # Imported here: a cached composition needs none of Hydra (about 0.1 s of a cycle's start).
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(directory), version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise _one_line(exc) from None
    finally:
        GlobalHydra.instance().clear()


def to_app_config(cfg: DictConfig) -> AppConfig:
    """Validate values and build the typed ``AppConfig`` (resolves interpolations in memory)."""
    _refuse_unknown_keys(cfg)
    app = _to_object_checked(cfg)
    if not isinstance(app, AppConfig):
        raise ConfigError("the composed config is not an AppConfig (is 'schema' in defaults?)")
    return app


def build_structured(schema: type[T], data: Any, prefix: str = "") -> T:
    """Merge ``data`` (a mapping or a DictConfig) into ``schema`` and build the dataclass.

    The one way every config file becomes a typed object (``broker.yaml``, ``alerts.yaml``):
    an unknown key, a wrong type, an unset ``${oc.env:…}`` or a value the dataclass refuses is a
    single-line ``ConfigError`` whose key is ``prefix`` + the full key (``alerts.yaml: email.
    smtp_port``). Interpolations are resolved in memory only.
    """
    try:
        node = OmegaConf.merge(OmegaConf.structured(schema), data)
    except OmegaConfBaseException as exc:
        raise _one_line(exc, prefix) from None
    assert isinstance(node, DictConfig)
    result = _to_object_checked(node, prefix)
    assert isinstance(result, schema)
    return result


def _to_object_checked(cfg: DictConfig, prefix: str = "") -> Any:
    try:
        return OmegaConf.to_object(cfg)
    except ConfigValueError:
        raise _locate_value_error(cfg, prefix) from None
    except OmegaConfBaseException as exc:
        raise _one_line(exc, prefix) from None


def load_config(
    overrides: list[str] | None = None, config_dir: Path | None = None
) -> tuple[DictConfig, AppConfig]:
    """Compose and validate: the raw config (for printing, unresolved) and the typed one.

    Refuses secrets given as overrides and checks every value's range
    (``otonom_trader.config.validation``); files and URLs are checked by ``check_inputs``.
    """
    from otonom_trader.config.validation import compose_validated

    return compose_validated(overrides, config_dir)


def config_hash(raw: DictConfig) -> str:
    """A short stable hash of the composed config *without* resolving secrets."""
    text = OmegaConf.to_yaml(raw, resolve=False, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _refuse_unknown_keys(cfg: DictConfig, path: str = "") -> None:
    """``+key=value`` opens a typed node; refuse keys the schema does not know anyway."""
    object_type = cfg._metadata.object_type  # noqa: SLF001
    if not dataclasses.is_dataclass(object_type):
        return  # a free-form mapping (e.g. broker.options)
    known = {f.name for f in dataclasses.fields(object_type)}
    for key in cfg:
        if key not in known:
            raise ConfigError(f"unknown key (not in {object_type.__name__})", key=f"{path}{key!s}")
        child: Any = cfg._get_node(key)  # noqa: SLF001
        if isinstance(child, DictConfig) and child._metadata.object_type is not None:  # noqa: SLF001
            _refuse_unknown_keys(child, f"{path}{key!s}.")


def _locate_value_error(cfg: DictConfig, path: str = "") -> ConfigError:
    """Find the deepest node whose dataclass refuses its values, and name the full key."""
    for key in cfg:
        child: Any = cfg._get_node(key)  # noqa: SLF001 - public API would resolve the node
        if isinstance(child, DictConfig) and child._metadata.object_type is not None:  # noqa: SLF001
            try:
                OmegaConf.to_object(child)
            except ConfigValueError:
                return _locate_value_error(child, f"{path}{key!s}.")
    try:
        OmegaConf.to_object(cfg)
    except ConfigValueError as exc:
        return ConfigError(str(exc).split(": ", 1)[1], key=f"{path}{exc.field}")
    return ConfigError("invalid value", key=path.rstrip(".: ") or None)


_MISSING_OPTION = re.compile(r"Could not find '([^/']+)/([^']+)'")


def _one_line(exc: BaseException, prefix: str = "") -> ConfigError:
    """Turn Hydra's and OmegaConf's multi-line errors into one line naming the key (after
    ``prefix``, e.g. the file the value came from)."""
    text = str(exc)
    missing = _MISSING_OPTION.search(text)
    if missing:
        group, option = missing.groups()
        options = re.findall(r"^\t(\S+)$", text, flags=re.MULTILINE)
        hint = f"; available: {', '.join(options)}" if options else ""
        return ConfigError(f"no option '{option}'{hint}", key=group)
    # Hydra wraps OmegaConf's error (which knows the key) in its own; prefer the inner one.
    inner = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    full_key = getattr(inner, "full_key", None)
    message = getattr(inner, "msg", None) or str(inner)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    if re.fullmatch(r"Key '[^']*' is not in struct", first):
        first = "not a key of this section (see --cfg job for the keys there are)"
    if _is_hydra_error(exc) and inner is exc and len(lines) > 1:
        # e.g. "Error parsing override 'mode'" + "missing EQUAL at '<EOF>'"
        first = f"{lines[0]}: {lines[1]}"
    if full_key:
        return ConfigError(first, key=f"{prefix}{full_key!s}")
    match = re.search(r"full_key: (\S+)", str(inner))
    if match:
        return ConfigError(first, key=f"{prefix}{match.group(1)}")
    return ConfigError(first, key=prefix.rstrip(".: ") or None)


def _is_hydra_error(exc: BaseException) -> bool:
    """``isinstance(exc, HydraException)`` without importing Hydra for an OmegaConf error."""
    return any(
        (cls.__module__, cls.__name__) == ("hydra.errors", "HydraException")
        for cls in type(exc).__mro__
    )
