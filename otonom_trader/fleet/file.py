"""The fleet file: which bots run, each a list of Hydra overrides (``conf/fleet/<name>.yaml``).

::

    pool: otonom-fleet            # the Prefect work pool the bots' deployments go to
    shared_venue_budget: true     # workers share each venue's request weight through Prefect
    bots:
      - name: trend-a             # bot.name (the loader adds bot.name=<name> to the overrides)
        overrides: [mode=shadow, broker.label=acct-a, guardrails=conservative]
        work_queue: host-a        # optional: only workers pulling this queue run the bot
        schedule: "*/5 * * * *"   # optional: a cron (UTC) or "<seconds>s"; default: one cycle
                                  # after each candle close of the strategy's timeframe

``load_fleet`` reads the file and composes every bot's configuration with the real Hydra
composition and value checks (no file of the strategy is read beyond its timeframe, no network,
no database): a bad override is one ``ConfigError`` line naming the bot and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otonom_trader.config.errors import ConfigError, ConfigValueError, require
from otonom_trader.fleet.config import BOT_NAME

#: Where named fleet files live (``--fleet example`` → ``conf/fleet/example.yaml``).
FLEET_GROUP = "fleet"
#: The work pool of a fleet file that names none.
DEFAULT_POOL = "otonom-fleet"
#: A work pool or queue name: what Prefect accepts and a shell does not need to quote.
_PREFECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INTERVAL = re.compile(r"^(\d{1,8})s$")


def check_prefect_name(value: str, key: str) -> str:
    """A work pool or queue name Prefect takes and a shell need not quote; else
    ``ConfigValueError`` naming ``key``."""
    require(
        bool(_PREFECT_NAME.match(value)),
        key,
        f"must be 1-64 letters, digits, '.', '-' or '_', got {value!r}",
    )
    return value


@dataclass
class FleetBotSpec:
    """One bot as the file declares it (the schema the YAML is merged into)."""

    name: str = ""
    overrides: list[str] = field(default_factory=list)
    work_queue: str | None = None
    schedule: str | None = None

    def __post_init__(self) -> None:
        require(
            bool(BOT_NAME.match(self.name)),
            "name",
            f"must be 1-24 lower-case letters, digits, '-' or '_' (starting with a letter or "
            f"digit), got {self.name!r}",
        )
        if self.work_queue is not None:
            check_prefect_name(self.work_queue, "work_queue")
        if self.schedule is not None:
            parse_schedule(self.schedule)


@dataclass
class FleetFileSpec:
    """The whole file: the pool, whether venues' budgets are shared, the bots."""

    pool: str = DEFAULT_POOL
    #: The directory the worker runs the flow from (the project's root on the worker's host);
    #: default: this project's root, as ``prefect.yaml`` does with ``$PWD``.
    working_directory: str | None = None
    shared_venue_budget: bool = False
    bots: list[FleetBotSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_prefect_name(self.pool, "pool")
        require(bool(self.bots), "bots", "the fleet has no bot")


@dataclass(frozen=True)
class Bot:
    """A validated bot: its overrides as the deployment passes them, and what the deployment
    is scheduled and tagged by."""

    name: str
    overrides: tuple[str, ...]
    account_id: str
    timeframe: str
    work_queue: str | None
    schedule: str | None
    #: The trading database (resolved in memory: may hold a password; never printed).
    db_url: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Fleet:
    """A validated fleet file."""

    name: str
    source: Path
    pool: str
    working_directory: str
    bots: tuple[Bot, ...]


def fleet_path(name_or_path: str) -> Path:
    """``example`` → ``conf/fleet/example.yaml``; anything with a ``/`` or ending in ``.yaml``
    is a path."""
    from otonom_trader.config.compose import CONFIG_DIR

    if "/" in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        return Path(name_or_path)
    return CONFIG_DIR / FLEET_GROUP / f"{name_or_path}.yaml"


def parse_schedule(text: str) -> tuple[str | None, int | None]:
    """A bot's ``schedule``: ``(cron, None)`` or ``(None, interval seconds)``."""
    interval = _INTERVAL.match(text.strip())
    if interval:
        seconds = int(interval.group(1))
        require(seconds >= 1, "schedule", f"an interval must be at least 1s, got {text!r}")
        return None, seconds
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    try:
        CronSim(text, datetime(2026, 1, 1))
    except CronSimError as exc:
        raise ConfigValueError(
            "schedule", f"must be a cron expression (UTC) or '<seconds>s', got {text!r} ({exc})"
        ) from None
    return text, None


def load_fleet(name_or_path: str) -> Fleet:
    """Read and validate a fleet file (see the module docstring); raises ``ConfigError``."""
    from otonom_trader.config.compose import PROJECT_ROOT

    path = fleet_path(name_or_path)
    spec = _read_spec(path)
    names = [bot.name for bot in spec.bots]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ConfigError(f"two bots are named {name!r}", f"{path}: bots[{index}].name")
    shared = ["bot.shared_venue_budget=true"] if spec.shared_venue_budget else []
    bots = tuple(_validated_bot(path, bot, shared) for bot in spec.bots)
    return Fleet(
        name=path.stem,
        source=path,
        pool=spec.pool,
        working_directory=spec.working_directory or str(PROJECT_ROOT),
        bots=bots,
    )


def _read_spec(path: Path) -> FleetFileSpec:
    import yaml
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from otonom_trader.config.compose import build_structured

    if not path.is_file():
        raise ConfigError(f"no such fleet file: {path}", "--fleet")
    try:
        data: Any = OmegaConf.load(path)
    except (OmegaConfBaseException, yaml.YAMLError, ValueError, OSError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConfigError(f"not a YAML mapping: {first}", str(path)) from None
    bots = data.get("bots") if isinstance(data, DictConfig) else None
    if isinstance(bots, ListConfig):
        # Each bot on its own first: an error then names the bot's place in the file.
        for index, bot in enumerate(bots):
            build_structured(FleetBotSpec, bot, prefix=f"{path}: bots[{index}].")
    return build_structured(FleetFileSpec, data, prefix=f"{path}: ")


def _validated_bot(path: Path, spec: FleetBotSpec, shared: list[str]) -> Bot:
    """Compose the bot's configuration exactly as its runs will (plus ``bot.name``)."""
    from otonom_trader.alerts.schedule import strategy_timeframe
    from otonom_trader.config.validation import compose_validated

    where = f"{path}: bot {spec.name!r}"
    for item in spec.overrides:
        key = str(item).split("=", 1)[0].lstrip("+~")
        if key in ("bot.name", "bot.shared_venue_budget"):
            raise ConfigError(f"{key} is set by the fleet file, not as an override", where)
    overrides = (*spec.overrides, f"bot.name={spec.name}", *shared)
    try:
        _, app = compose_validated(list(overrides))
        timeframe = strategy_timeframe(app.strategy.path)
    except ConfigError as exc:
        raise ConfigError(str(exc), where) from None
    return Bot(
        name=spec.name,
        overrides=overrides,
        account_id=account_of(app),
        timeframe=timeframe,
        work_queue=spec.work_queue,
        schedule=spec.schedule,
        db_url=app.db.url,
    )


def account_of(app: Any) -> str:
    """The account id a bot's runs trade (``paper`` in PAPER), as this host computes it: a
    simulated exchange's account is the file beside the database, an exchange's includes the
    fingerprint of the key found in this environment (so deploy with the workers' keys set)."""
    from otonom_trader.accounts.identity import Account
    from otonom_trader.config.validation import sim_account_path

    if not app.mode.execution_mode.uses_broker:
        return Account.paper().account_id
    endpoint = str(sim_account_path(app.db.url).resolve())
    return Account.for_broker(app.broker, sim_endpoint=endpoint).account_id
