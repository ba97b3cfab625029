"""The one validation pass: every input of a cycle is checked before anything runs.

The flow's command line, the flow itself, ``TradingDaemon`` and the ``otonom-trader`` commands
call the same functions, in this order, and only then start Prefect, open a connection or touch
the database::

    refuse_secret_overrides   an override that sets a key, secret, password or token
    compose + typed schema    unknown keys, wrong types, each section's own value checks
    check_values              every number finite and inside a sensible bound
    check_inputs              strategy file and its symbols against the venue's markets, CSV
                              file, broker kind and keys, URLs, alert channels, the database

Each failure is one ``ConfigError`` (or ``DatabaseError``) line naming the key or the file and
what was expected. Nothing here writes a file, creates a directory or sends a request.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from otonom_trader.config.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from otonom_trader.broker.config import BrokerConfig
    from otonom_trader.config.schema import AppConfig
    from otonom_trader.strategy.model import Strategy

# Keys whose values are credentials. As overrides they would become flow-run parameters (stored
# in Prefect's database and shown in its UI) and shell history.
_SECRET_NAME = re.compile(
    r"(?:^|[.{,\s])(api_key|api_secret|apikey|secret|password|passwd|passphrase|"
    r"bot_token|token|private_key)\s*[:=]",
    re.IGNORECASE,
)
_URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]+@")
# Apprise services whose URL *is* the credential (a bot token, a webhook secret): typed on the
# command line it would be stored with the flow run like any other secret.
_TOKEN_URL = re.compile(
    r"\b(tgram|discord|slack|msteams|pover|pbul|gotifys?|matrixs?|mmosts?|rockets?|twilio|"
    r"zulip|signals?|ntfys?|join|ifttt)://",
    re.IGNORECASE,
)
SECRET_ENVIRONMENT = {
    "password": "OTONOM_SMTP_PASSWORD",
    "bot_token": "OTONOM_TELEGRAM_BOT_TOKEN",
    "token": "OTONOM_TELEGRAM_BOT_TOKEN",
}

# Upper (and a few lower) bounds by full key: far outside what anyone means, and far inside what
# the arithmetic, the database and the exchange can take.
LARGEST_INTEGER = 2**63 - 1  # a database INTEGER
BOUNDS: dict[str, tuple[float, float]] = {
    "paper.initial_cash": (0, 1e12),
    "paper.slippage_bps": (0, 1000),
    "broker.timeout_ms": (1, 300_000),
    "broker.sim.seed": (0, 2**32 - 1),
    "broker.sim.initial_cash": (0, 1e12),
    "broker.sim.latency_ms_mean": (0, 60_000),
    "broker.sim.latency_ms_jitter": (0, 60_000),
    "broker.sim.slippage_bps_base": (0, 1000),
    "broker.sim.slippage_bps_per_10k_quote": (0, 1000),
    "broker.sim.taker_fee_bps": (0, 1000),
    "broker.sim.maker_fee_bps": (0, 1000),
    "guardrails.max_consecutive_losses": (1, 1000),
    "guardrails.consecutive_loss_cooldown_hours": (0, 24 * 366),
    "data.history_bars": (2, 10_000),
    "data.seed": (0, 2**32 - 1),
    "data.annual_volatility_pct": (0, 1000),
    "data.trend_bars": (1, 100_000),
    "data.stale_after_timeframes": (1, 1000),
    "db.busy_timeout_ms": (0, 600_000),
    "alerts.max_gap_minutes": (0, 7 * 24 * 60),
    "alerts.dedupe_cooldown_minutes": (0, 30 * 24 * 60),
    "alerts.rate_limit_per_channel_per_hour": (1, 3600),
    "alerts.max_attempts": (1, 1000),
    "alerts.retry_backoff_minutes": (0, 24 * 60),
    "alerts.max_deliveries_per_call": (1, 1000),
}
TEXT_LIMIT = 2_000  # characters of any text value (a path, a URL, a name)


def refuse_secret_overrides(overrides: list[str]) -> None:
    """Refuse an override that carries a credential; say which variable to set instead."""
    for item in overrides:
        text = str(item)
        key = text.split("=", 1)[0].strip().lstrip("+~")
        match = _SECRET_NAME.search("." + text) if "=" in text else None
        if match:
            name = match.group(1).lower()
            where = _secret_variable(key, name)
            raise ConfigError(
                f"secrets are not accepted as overrides (they would be stored with the flow run "
                f"and in shell history); set {where} in the environment instead",
                key=key,
            )
        if "=" in text and _TOKEN_URL.search(text.split("=", 1)[1]):
            raise ConfigError(
                "an alert URL carries its service's token and is not accepted as an override; "
                "put it in config/alerts.yaml (git-ignored) or in the environment, e.g. "
                "'alerts.urls=[${oc.env:OTONOM_ALERT_URL}]'",
                key=key,
            )
        if "=" in text and _URL_WITH_PASSWORD.search(text.split("=", 1)[1]):
            raise ConfigError(
                "a URL with a password is not accepted as an override; put it in the "
                "environment (OTONOM_DB_URL for the database) instead",
                key=key,
            )


def _secret_variable(key: str, name: str) -> str:
    if key.startswith("broker") and name in ("api_key", "apikey", "api_secret", "secret"):
        return "<EXCHANGE>[_TESTNET]_API_KEY / _API_SECRET (e.g. BINANCE_TESTNET_API_KEY)"
    return SECRET_ENVIRONMENT.get(name, "it")


def compose_validated(
    overrides: list[str] | None = None,
    config_dir: Path | None = None,
    *,
    cache_key: str | None = None,
) -> tuple[DictConfig, AppConfig]:
    """Compose ``conf/`` with ``overrides`` and check every value (no file, no network).
    A composition a started cycle cached for the same overrides, files and code is taken
    instead of composing with Hydra again (``compose_cache``)."""
    from otonom_trader.config.compose import CONFIG_DIR, compose_raw, to_app_config
    from otonom_trader.config.compose_cache import composition_key

    overrides = list(overrides or [])
    refuse_secret_overrides(overrides)
    if cache_key is None:
        cache_key = composition_key(overrides, (config_dir or CONFIG_DIR).resolve())
    raw = compose_raw(overrides, config_dir, cache_key=cache_key)
    app = to_app_config(raw)
    check_values(app)
    return raw, app


def check_values(node: Any, path: str = "", label: str | None = None) -> None:
    """Every number finite and inside ``BOUNDS``; every text of a sane length.

    ``path`` is the node's place in the configuration (``broker.``), which ``BOUNDS`` is keyed
    by; ``label`` what errors call it instead (``config/broker.yaml: ``), when it came from a
    file.
    """
    shown = path if label is None else label
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        key, name = f"{path}{field.name}", f"{shown}{field.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_values(value, f"{key}.", f"{name}.")
        elif isinstance(value, dict):
            for item_key, item in value.items():
                if dataclasses.is_dataclass(item) and not isinstance(item, type):
                    check_values(item, f"{key}.{item_key}.", f"{name}.{item_key}.")
                else:
                    _check_scalar(item, f"{key}.{item_key}", f"{name}.{item_key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                _check_scalar(item, f"{key}[{index}]", f"{name}[{index}]")
        else:
            _check_scalar(value, key, name)


def _check_scalar(value: Any, key: str, name: str) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"must be a finite number, got {value}", key=name)
    if isinstance(value, int) and abs(value) > LARGEST_INTEGER:
        raise ConfigError(f"must be at most {LARGEST_INTEGER}, got {value}", key=name)
    if isinstance(value, str) and len(value) > TEXT_LIMIT:
        raise ConfigError(f"must be at most {TEXT_LIMIT} characters, got {len(value)}", key=name)
    bounds = BOUNDS.get(key)
    if bounds and isinstance(value, int | float) and not bounds[0] <= value <= bounds[1]:
        low, high = bounds
        raise ConfigError(f"must be within [{low:g}, {high:g}], got {value:g}", key=name)


def check_inputs(app: AppConfig) -> None:
    """Check everything a cycle reads before it runs: files, symbols, broker, URLs, alerts,
    database. Reads files; writes nothing; sends nothing. Fills the one default that depends on
    a file: ``alerts.max_gap_minutes`` from the strategy's timeframe (when unset)."""
    from otonom_trader.alerts.schedule import apply_schedule_default
    from otonom_trader.mode import ExecutionMode

    mode = app.mode.execution_mode
    strategy = _check_strategy(app)
    # The "daemon has not run" alert follows the strategy's schedule unless set explicitly.
    apply_schedule_default(app.alerts, strategy.timeframe)
    _check_data(app)
    _check_store(app, strategy)
    trades = mode is not ExecutionMode.PAPER
    _check_broker(app, mode, trades=trades)
    if trades and app.broker.kind == "sim":
        _check_sim_account(app)
    _check_alerts(app)
    # A named bot on an exchange account needs its allocation (raises without one).
    app.bot.allocation(
        uses_broker=mode.uses_broker,
        paper_cash=app.paper.initial_cash,
        quote=app.broker.quote_asset,
    )
    from otonom_trader.persistence.database import preflight

    preflight(app.db.url)
    from otonom_trader.promotion.live_gate import refuse_unpromoted_live

    refuse_unpromoted_live(app)  # LIVE on a production account: only a version promoted to live


def validate_cycle(
    overrides: list[str] | None = None, config_dir: Path | None = None
) -> tuple[DictConfig, AppConfig]:
    """The whole pass for the flow and its command line: compose, check values, check inputs.
    Writes nothing (a started cycle caches its composition: ``remember_composition``)."""
    raw, app = compose_validated(overrides, config_dir)
    check_inputs(app)
    return raw, app


def resolve_project_path(path: str) -> Path:
    """A relative path is looked up in the working directory, then in the project."""
    from otonom_trader.config.compose import PROJECT_ROOT

    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    in_project = PROJECT_ROOT / candidate
    return in_project if in_project.exists() else candidate


def _check_strategy(app: AppConfig) -> Strategy:
    from otonom_trader.strategy.model import StrategyError, load_strategy

    path = resolve_project_path(app.strategy.path)
    if not path.exists():
        raise ConfigError(f"strategy file not found: {path}", key="strategy.path")
    strategy = load_strategy(path)
    markets = _known_markets(app)
    quote = app.broker.quote_asset
    for symbol in strategy.symbols:
        if symbol not in markets:
            raise StrategyError(
                f"{strategy.path}: symbols: {symbol} is not a market of the venue "
                f"(known: {', '.join(sorted(markets))})"
            )
        if markets[symbol].quote != quote:
            raise StrategyError(
                f"{strategy.path}: symbols: {symbol} is not quoted in {quote} "
                f"(broker.quote_asset); expected symbols like BTC/{quote}"
            )
    return strategy


def _known_markets(app: AppConfig) -> dict[str, Any]:
    """The shipped markets, and those of the configured venues' own market lists where this
    machine has them cached (``market.venue_markets``; checked without a request)."""
    from otonom_trader.market.rules import known_market_rules
    from otonom_trader.market.venue_markets import read_cached_markets, register_venue_markets

    venues: list[tuple[str, str | None, bool]] = []
    if app.broker.kind != "sim":
        venues.append((app.broker.kind, app.broker.base_url, bool(app.broker.testnet)))
    if app.data.source == "exchange":
        venues.append((app.data.exchange_id, app.data.exchange_base_url, False))
    for kind, base_url, testnet in venues:
        cached = read_cached_markets(kind, base_url, testnet)
        if cached is not None:
            register_venue_markets(cached[0])
    return known_market_rules()


def _check_data(app: AppConfig) -> None:
    from otonom_trader.market.config import DataSource

    data = app.data
    if data.source == DataSource.CSV:
        from otonom_trader.market.csv_source import CsvMarketData

        assert data.csv_path  # DataConfig requires it
        CsvMarketData(data.csv_path)  # parses the whole file; every bad cell is one line
    elif data.source == DataSource.EXCHANGE:
        _check_exchange_id(data.exchange_id, "data.exchange_id")
        _check_url(data.exchange_base_url, "data.exchange_base_url")


def _check_store(app: AppConfig, strategy: Strategy) -> None:
    """data=store: every symbol of the strategy has downloaded candles of its timeframe."""
    from otonom_trader.market.config import DataSource

    if app.data.source != DataSource.STORE:
        return
    from otonom_trader.market.store_source import StoreMarketData

    _check_exchange_id(app.data.exchange_id, "data.exchange_id")
    source = StoreMarketData(app.data.store_path, app.data.exchange_id)
    source.require(list(strategy.symbols), strategy.timeframe)


def check_broker_values(broker: BrokerConfig, label: str = "broker.") -> None:
    """A broker section or a ``broker.yaml`` on its own: values in range, a venue ccxt knows,
    an http(s) ``base_url``. ``label`` names it in errors (``config/broker.yaml: ``)."""
    check_values(broker, "broker.", label)
    _check_url(broker.base_url, f"{label}base_url")
    if broker.kind != "sim":
        _check_exchange_id(broker.kind, f"{label}kind")


def _check_broker(app: AppConfig, mode: Any, *, trades: bool) -> None:
    """The venue must exist whatever the mode; keys and confirmation only when it trades."""
    broker = app.broker
    check_broker_values(broker)
    if broker.kind == "sim" or not trades:
        return
    confirm_env = "OTONOM_CONFIRM_PRODUCTION"
    confirmed = app.mode.confirm_production or os.environ.get(confirm_env, "").lower() in {
        "1",
        "yes",
        "true",
    }
    if broker.is_production and not confirmed:
        raise ConfigError(
            f"{mode.value.upper()} on {broker.display_name} trades real money; refusing to "
            f"start without mode.confirm_production=true or {confirm_env}=yes",
            key="mode.confirm_production",
        )
    if not (broker.api_key and broker.api_secret):
        prefix = broker.kind.upper() + ("_TESTNET" if broker.testnet else "")
        raise ConfigError(
            f"{mode.value.upper()} on {broker.kind} needs an API key and secret; set "
            f"{prefix}_API_KEY and {prefix}_API_SECRET in the environment",
            key="broker.api_key",
        )


def sim_account_path(db_url: str | None) -> Path:
    """Where the simulated exchange keeps its account: beside a SQLite database file, else in
    ``$OTONOM_HOME`` (the same place ``build_context`` gives it)."""
    from sqlalchemy.engine import make_url

    from otonom_trader.home import otonom_home
    from otonom_trader.persistence.database import resolve_url

    url = make_url(resolve_url(db_url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database)).with_suffix(".sim-exchange.json")
    return otonom_home() / "sim-exchange.json"


def _check_sim_account(app: AppConfig) -> None:
    """A damaged simulated-exchange account (its database, or an earlier version's JSON file)
    is refused now, not inside the flow. Opening the account only reads."""
    from otonom_trader.broker.sim import SimulatedExchange
    from otonom_trader.broker.sim_store import store_path

    path = sim_account_path(app.db.url)
    if path.exists() or store_path(path).exists():
        SimulatedExchange(app.broker.sim, app.broker.quote_asset, state_path=path)


def _check_exchange_id(kind: str, key: str) -> None:
    import ccxt

    if kind not in ccxt.exchanges:
        raise ConfigError(
            f"{kind!r} is not an exchange ccxt knows; expected sim or a ccxt id such as "
            "binance or bybit",
            key=key,
        )


def _check_url(url: str | None, key: str) -> None:
    if url is None:
        return
    parts = urlsplit(url) if not any(c.isspace() for c in url) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"expected an http(s)://host[:port] URL, got {url!r}", key=key)
    try:
        parts.port  # noqa: B018 - raises on a port outside 0..65535
    except ValueError:
        raise ConfigError(f"expected a port in 1..65535, got {url!r}", key=key) from None


def _check_alerts(app: AppConfig) -> None:
    alerts = app.alerts
    if not alerts.enabled or not (alerts.urls or alerts.email.enabled or alerts.telegram.enabled):
        return
    from otonom_trader.alerts.channels import build_channels

    build_channels(alerts)  # parses each Apprise URL (no delivery); names the bad one
