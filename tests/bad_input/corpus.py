"""The bad-input corpus: every case is a user mistake that must be refused up front.

Each ``Case`` is a real command line (``python flows/daemon.py …`` or ``otonom-trader …``), the
files it refers to, and what its single line on stderr must say: the culprit (key, file or flag)
and what was expected. The runners (``test_corpus.py`` in-process, ``test_corpus_subprocess.py``
as real processes) assert exit status 2, exactly one line, no traceback, and that neither the
database nor the file tree changed.

``{ws}`` in an argument or a file's content is the case's working directory.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FileContent = str | bytes | Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One refused input."""

    id: str
    category: str  # overrides | strategy | broker | alerts | cli | csv | database
    entry: str  # "flow": python flows/daemon.py ARGV; "cli": otonom-trader ARGV
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # substrings of the one stderr line
    files: Mapping[str, FileContent] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    subprocess: bool = False  # also run as a real process (a representative subset)
    outside: tuple[str, ...] = ()  # absolute paths that must not come into existence


# -- strategy files ------------------------------------------------------------------------------

BASELINE: dict[str, Any] = {
    "name": "corpus",
    "version": "1.0",
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "1h",
    "entry": [
        {"indicator": "ema_cross", "fast": 12, "slow": 26, "direction": "up"},
        {"indicator": "rsi", "period": 14, "below": 70},
    ],
    "exit": [{"indicator": "ema_cross", "fast": 12, "slow": 26, "direction": "down"}],
    "sizing": {"mode": "pct_equity", "value": 10, "max_position_quote": 2500},
    "risk": {"stop_loss_pct": 4, "take_profit_pct": 8},
}
DELETE = object()


def strategy(**changes: Any) -> str:
    """The baseline strategy as YAML with ``changes`` applied (``sizing__value=…`` sets
    ``sizing.value``; ``entry__0__fast`` an item of a list; ``DELETE`` removes the key)."""
    data = copy.deepcopy(BASELINE)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _strategy_case(id: str, content: FileContent, *expect: str, subprocess: bool = False) -> Case:
    return Case(
        id=f"strategy-{id}",
        category="strategy",
        entry="flow",
        argv=("strategy.path={ws}/s.yaml",),
        expect=("s.yaml", *expect),
        files={"s.yaml": content},
        subprocess=subprocess,
    )


STRATEGY_CASES = [
    _strategy_case(
        "sizing-inf",
        strategy(sizing__mode="fixed_quote", sizing__value=float("inf")),
        "sizing.value",
        "finite number",
        subprocess=True,
    ),
    _strategy_case(
        "sizing-nan",
        strategy(sizing__mode="fixed_quote", sizing__value=float("nan")),
        "sizing.value",
        "finite number",
    ),
    _strategy_case("sizing-negative", strategy(sizing__value=-5), "sizing.value", "(0, 100]"),
    _strategy_case(
        "sizing-zero",
        strategy(sizing__mode="fixed_quote", sizing__value=0),
        "sizing.value",
        "(0, 1e+12]",
    ),
    _strategy_case(
        "sizing-huge-quote",
        strategy(sizing__mode="fixed_quote", sizing__value=1e13),
        "sizing.value",
        "(0, 1e+12]",
    ),
    _strategy_case("sizing-pct-over-100", strategy(sizing__value=150), "sizing.value", "(0, 100]"),
    _strategy_case(
        "sizing-mode-unknown",
        strategy(sizing__mode="all_in"),
        "sizing.mode",
        "fixed_quote or pct_equity",
    ),
    _strategy_case(
        "sizing-cap-negative",
        strategy(sizing__max_position_quote=-1),
        "sizing.max_position_quote",
        "(0, 1e+12]",
    ),
    _strategy_case(
        "sizing-cap-inf",
        strategy(sizing__max_position_quote=float("inf")),
        "sizing.max_position_quote",
        "finite number",
    ),
    _strategy_case(
        "sizing-value-text", strategy(sizing__value="ten"), "sizing.value", "must be a number"
    ),
    _strategy_case(
        "description-200k-brackets",
        "name: x\ndescription: " + "[" * 200_000 + "\n",
        "nested more than 32 levels",
        subprocess=True,
    ),
    _strategy_case(
        "deep-mapping-nesting",
        "a: " + "{b: " * 100 + "1" + "}" * 100 + "\n",
        "nested more than 32 levels",
    ),
    _strategy_case(
        "description-too-long",
        strategy(description="x" * 5000),
        "description",
        "at most 2000 characters",
    ),
    _strategy_case("name-too-long", strategy(name="n" * 500), "name", "at most 100 characters"),
    _strategy_case("file-too-large", "# " + "x" * 1_100_000 + "\n", "at most 1000000"),
    _strategy_case("binary-file", bytes(range(256)) * 4, "not a text (UTF-8) file"),
    _strategy_case("latin1-file", "name: caf\xe9\n".encode("latin-1"), "not a text (UTF-8)"),
    _strategy_case("empty-file", "", "expected a mapping"),
    _strategy_case("top-level-list", "- 1\n- 2\n", "expected a mapping"),
    _strategy_case("top-level-scalar", "just text\n", "expected a mapping"),
    _strategy_case("yaml-syntax-error", "name: [unclosed\n", "not valid YAML", "line"),
    _strategy_case("tab-indentation", "name: x\nsizing:\n\tmode: pct_equity\n", "not valid YAML"),
    _strategy_case("duplicate-key", strategy() + "entry: []\n", "entry", "appears twice"),
    _strategy_case("unknown-key", strategy(leverage=10), "leverage", "unknown key"),
    _strategy_case("missing-symbols", strategy(symbols=DELETE), "symbols", "is required"),
    _strategy_case("missing-sizing", strategy(sizing=DELETE), "sizing", "is required"),
    _strategy_case("missing-entry", strategy(entry=DELETE), "entry", "is required"),
    _strategy_case("version-float", strategy(version=1.1), "version", "must be text"),
    _strategy_case(
        "symbol-foo-bar",
        strategy(symbols=["FOO/BAR"]),
        "FOO/BAR",
        "not a market of the venue",
        subprocess=True,
    ),
    _strategy_case(
        "symbol-dash", strategy(symbols=["BTC-USDT"]), "BTC-USDT", "BASE/QUOTE", subprocess=True
    ),
    _strategy_case("symbol-unsplittable", strategy(symbols=["BTCXYZ"]), "symbols", "BASE/QUOTE"),
    _strategy_case(
        "symbol-repeated", strategy(symbols=["BTC/USDT", "btcusdt"]), "symbols", "more than once"
    ),
    _strategy_case("symbol-not-text", strategy(symbols=[1, 2]), "symbols", "list of symbols"),
    _strategy_case(
        "too-many-symbols",
        strategy(symbols=[f"C{i}/USDT" for i in range(150)]),
        "symbols",
        "at most 100",
    ),
    _strategy_case("timeframe-unknown", strategy(timeframe="7x"), "timeframe"),
    _strategy_case(
        "indicator-unknown",
        strategy(entry__0__indicator="macd"),
        "entry[0].indicator",
        "unknown indicator",
    ),
    _strategy_case(
        "fast-not-below-slow", strategy(entry__0__fast=30), "entry[0].fast", "smaller than slow"
    ),
    _strategy_case("period-zero", strategy(entry__1__period=0), "entry[1].period", "1..5000"),
    _strategy_case("period-huge", strategy(entry__1__period=10**9), "entry[1].period", "1..5000"),
    _strategy_case(
        "period-inf", strategy(entry__1__period=float("inf")), "entry[1].period", "finite number"
    ),
    _strategy_case("rsi-bound-over-100", strategy(entry__1__below=150), "entry[1].below", "0..100"),
    _strategy_case(
        "stop-loss-over-100", strategy(risk__stop_loss_pct=200), "risk.stop_loss_pct", "(0, 100]"
    ),
    _strategy_case(
        "take-profit-nan",
        strategy(risk__take_profit_pct=float("nan")),
        "risk.take_profit_pct",
        "finite number",
    ),
    _strategy_case(
        "direction-unknown",
        strategy(exit__0__direction="sideways"),
        "exit[0].direction",
        "up or down",
    ),
    _strategy_case("entry-empty-list", strategy(entry=[]), "entry", "is required"),
]

STRATEGY_FILE_CASES = [
    Case(
        "strategy-path-missing",
        "strategy",
        "flow",
        ("strategy.path=nope.yaml",),
        ("strategy.path", "not found", "nope.yaml"),
        subprocess=True,
    ),
    Case(
        "strategy-path-is-directory",
        "strategy",
        "flow",
        ("strategy.path={ws}/dir",),
        ("dir", "must be a regular file"),
        files={"dir/keep.txt": "x"},
    ),
    Case(
        "cli-strategy-missing",
        "strategy",
        "cli",
        ("daemon-once", "--strategy", "gone.yaml"),
        ("strategy.path", "not found", "gone.yaml"),
        subprocess=True,
    ),
    Case(
        "cli-strategy-bad-symbol",
        "strategy",
        "cli",
        ("daemon-once", "--strategy", "{ws}/s.yaml", "--mode", "shadow"),
        ("s.yaml", "FOO/BAR", "not a market"),
        files={"s.yaml": strategy(symbols=["FOO/BAR"])},
    ),
]

# -- overrides -----------------------------------------------------------------------------------


def _override_case(
    id: str,
    argv: tuple[str, ...] | str,
    *expect: str,
    subprocess: bool = False,
    env: Mapping[str, str] | None = None,
) -> Case:
    args = (argv,) if isinstance(argv, str) else argv
    return Case(
        f"override-{id}", "overrides", "flow", args, expect, env=env or {}, subprocess=subprocess
    )


OVERRIDE_CASES = [
    _override_case(
        "losses-huge",
        "guardrails.max_consecutive_losses=99999999999999999999999",
        "guardrails.max_consecutive_losses",
        "at most",
        subprocess=True,
    ),
    _override_case(
        "losses-over-bound",
        "guardrails.max_consecutive_losses=5000",
        "guardrails.max_consecutive_losses",
        "[1, 1000]",
    ),
    _override_case(
        "losses-zero",
        "guardrails.max_consecutive_losses=0",
        "guardrails.max_consecutive_losses",
        "at least 1",
    ),
    _override_case(
        "initial-cash-1e309",
        "paper.initial_cash=1e309",
        "paper.initial_cash",
        "finite number",
        subprocess=True,
    ),
    _override_case(
        "initial-cash-1e308",
        "paper.initial_cash=1e308",
        "paper.initial_cash",
        "[0, 1e+12]",
        subprocess=True,
    ),
    _override_case(
        "initial-cash-negative", "paper.initial_cash=-5", "paper.initial_cash", "positive"
    ),
    _override_case(
        "initial-cash-nan",
        "paper.initial_cash=nan",
        "paper.initial_cash",
        "must be positive, got nan",
    ),
    _override_case("initial-cash-text", "paper.initial_cash=lots", "paper.initial_cash"),
    _override_case(
        "volatility-inf",
        "data.annual_volatility_pct=inf",
        "data.annual_volatility_pct",
        "finite number",
        subprocess=True,
    ),
    _override_case(
        "volatility-1e308",
        "data.annual_volatility_pct=1e308",
        "data.annual_volatility_pct",
        "[0, 1000]",
    ),
    _override_case(
        "volatility-minus-inf",
        "data.annual_volatility_pct=-inf",
        "data.annual_volatility_pct",
        "positive",
    ),
    _override_case(
        "history-bars-huge",
        "data.history_bars=30000000",
        "data.history_bars",
        "[2, 10000]",
        subprocess=True,
    ),
    _override_case("history-bars-one", "data.history_bars=1", "data.history_bars", "at least 2"),
    _override_case("history-bars-fraction", "data.history_bars=1.5", "data.history_bars"),
    _override_case(
        "latency-1e12",
        "broker.sim.latency_ms_mean=1e12",
        "broker.sim.latency_ms_mean",
        "[0, 60000]",
        subprocess=True,
    ),
    _override_case(
        "latency-negative",
        "broker.sim.latency_ms_jitter=-1",
        "broker.sim.latency_ms_jitter",
        "not be negative",
    ),
    _override_case(
        "reject-probability-2",
        "broker.sim.reject_probability=2",
        "broker.sim.reject_probability",
        "[0, 1]",
    ),
    _override_case(
        "sim-cash-inf", "broker.sim.initial_cash=inf", "broker.sim.initial_cash", "finite number"
    ),
    _override_case("sim-seed-negative", "broker.sim.seed=-1", "broker.sim.seed", "[0, 4.29"),
    _override_case(
        "drawdown-150", "guardrails.max_drawdown_pct=150", "guardrails.max_drawdown_pct", "(0, 100]"
    ),
    _override_case(
        "drawdown-nan",
        "guardrails.max_drawdown_pct=nan",
        "guardrails.max_drawdown_pct",
        "(0, 100], got nan",
    ),
    _override_case(
        "daily-loss-zero",
        "guardrails.max_daily_loss_pct=0",
        "guardrails.max_daily_loss_pct",
        "(0, 100]",
    ),
    _override_case(
        "cooldown-1e9",
        "guardrails.consecutive_loss_cooldown_hours=1e9",
        "guardrails.consecutive_loss_cooldown_hours",
        "[0, 8784]",
    ),
    _override_case(
        "halt-policy-unknown",
        "guardrails.halt_policy=sometimes",
        "guardrails.halt_policy",
        "reject_all, reduce_only",
    ),
    _override_case("slippage-5000", "paper.slippage_bps=5000", "paper.slippage_bps", "[0, 1000]"),
    _override_case("data-seed-negative", "data.seed=-1", "data.seed", "[0, 4.29"),
    _override_case("trend-bars-zero", "data.trend_bars=0", "data.trend_bars", "at least 1"),
    _override_case(
        "stale-1e6",
        "data.stale_after_timeframes=1000000",
        "data.stale_after_timeframes",
        "[1, 1000]",
    ),
    _override_case(
        "data-source-unknown", "data.source=ftp", "data.source", "synthetic, csv, exchange"
    ),
    _override_case(
        "busy-timeout-negative", "db.busy_timeout_ms=-1", "db.busy_timeout_ms", "not be negative"
    ),
    _override_case(
        "busy-timeout-huge", "db.busy_timeout_ms=100000000000", "db.busy_timeout_ms", "[0, 600000]"
    ),
    _override_case("broker-timeout-zero", "broker.timeout_ms=0", "broker.timeout_ms", "positive"),
    _override_case(
        "alerts-attempts-huge", "alerts.max_attempts=100000", "alerts.max_attempts", "[1, 1000]"
    ),
    _override_case(
        "alerts-timeout-1000", "alerts.timeout_seconds=1000", "alerts.timeout_seconds", "(0, 60]"
    ),
    _override_case(
        "alerts-drawdown-101",
        "alerts.drawdown_alert_pct=101",
        "alerts.drawdown_alert_pct",
        "(0, 100]",
    ),
    _override_case(
        "alerts-gap-negative", "alerts.max_gap_minutes=-1", "alerts.max_gap_minutes", "positive"
    ),
    _override_case("unknown-top-key", "nokey=1", "nokey"),
    _override_case("unknown-nested-key", "guardrails.nokey=1", "guardrails.nokey"),
    _override_case("append-unknown-key", "+paper.bogus=1", "paper.bogus", "unknown key"),
    _override_case(
        "group-option-unknown", "mode=turbo", "mode", "no option 'turbo'", "paper", subprocess=True
    ),
    _override_case(
        "guardrails-option-unknown", "guardrails=ultra", "guardrails", "no option 'ultra'"
    ),
    _override_case("override-without-equals", "mode", "mode"),
    _override_case("override-empty-key", "=x", "Could not override ''"),
    _override_case("confirm-not-bool", "mode.confirm_production=maybe", "mode.confirm_production"),
    _override_case("mode-name-unknown", "mode.name=turbo", "mode.name", "paper, shadow, live"),
    _override_case(
        "csv-readme-example",
        ("data=csv", "data.csv_path=/path/ohlcv.csv"),
        "data.csv_path",
        "CSV file not found",
        "/path/ohlcv.csv",
        subprocess=True,
    ),
    _override_case("csv-path-missing", "data=csv", "data.csv_path"),
    _override_case(
        "live-binance-without-keys",
        ("mode=live", "broker=binance", "mode.confirm_production=true"),
        "broker.api_key",
        "BINANCE_API_KEY",
        "environment",
        subprocess=True,
    ),
    _override_case(
        "live-binance-as-in-the-issue",
        ("mode=live", "broker=binance"),
        "mode.confirm_production",
        "real money",
    ),
    _override_case(
        "shadow-testnet-without-keys",
        ("mode=shadow", "broker=binance_testnet"),
        "broker.api_key",
        "BINANCE_TESTNET_API_KEY",
    ),
    _override_case(
        "live-production-unconfirmed",
        ("mode=live", "broker=binance"),
        "mode.confirm_production",
        "real money",
        env={"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"},
    ),
    _override_case(
        "broker-kind-unknown",
        "broker.kind=notanexchange",
        "broker.kind",
        "notanexchange",
        "ccxt id",
        subprocess=True,
    ),
    _override_case(
        "broker-kind-unknown-shadow",
        ("mode=shadow", "broker.kind=notanexchange"),
        "broker.kind",
        "ccxt id",
    ),
    _override_case(
        "broker-base-url-not-url",
        ("broker=binance_testnet", "broker.base_url=notaurl"),
        "broker.base_url",
        "http(s)://",
    ),
    _override_case(
        "broker-base-url-ftp",
        ("broker=binance_testnet", "broker.base_url=ftp://example.com"),
        "broker.base_url",
        "http(s)://",
    ),
    _override_case(
        "broker-base-url-bad-port",
        ("broker=binance_testnet", "broker.base_url=http://127.0.0.1:99999"),
        "broker.base_url",
        "port",
    ),
    _override_case(
        "data-exchange-unknown",
        ("data=exchange", "data.exchange_id=nowhere"),
        "data.exchange_id",
        "ccxt id",
    ),
    _override_case(
        "data-exchange-url-bad",
        ("data=exchange", "data.exchange_base_url=localhost:8765"),
        "data.exchange_base_url",
        "http(s)://",
    ),
    _override_case(
        "alerts-url-not-url", "alerts.urls=[notaurl]", "alerts.urls[0]", "Apprise", subprocess=True
    ),
    _override_case(
        "alerts-url-unknown-scheme", "alerts.urls=[nosuchscheme://x]", "alerts.urls[0]", "Apprise"
    ),
    _override_case(
        "alerts-route-unknown-channel",
        "alerts.routes={pager: {min_severity: info}}",
        "alerts.routes.pager",
        "not a key of this section",
    ),
    _override_case(
        "alerts-email-no-recipient",
        ("alerts.email.enabled=true", "alerts.email.to_addrs=[]"),
        "alerts.email.to_addrs",
        "recipient",
    ),
    _override_case(
        "alerts-smtp-port",
        "alerts.email.smtp_port=70000",
        "alerts.email.smtp_port",
        "must be a port",
    ),
    _override_case(
        "path-too-long", "strategy.path=" + "p" * 3000, "strategy.path", "at most 2000 characters"
    ),
    # A fleet's bot (otonom_trader.fleet): its allocation and the account-level guardrail.
    _override_case(
        "bot-capital-negative", ("bot.name=a", "bot.capital=-5"), "bot.capital", "0 or more"
    ),
    _override_case("bot-capital-without-name", "bot.capital=100", "bot.capital", "bot.name"),
    _override_case(
        "bot-on-exchange-without-capital",
        ("bot.name=a", "mode=live", "broker=sim"),
        "bot.capital",
        "allocation",
    ),
    _override_case(
        "account-daily-loss-150",
        "guardrails.account.max_daily_loss_pct=150",
        "guardrails.account.max_daily_loss_pct",
        "(0, 100]",
    ),
]

SECRET_CASES = [
    _override_case(
        "secret-api-key",
        ("broker.api_key=X", "broker.api_secret=Y"),
        "broker.api_key",
        "environment",
        subprocess=True,
    ),
    _override_case("secret-api-secret", "broker.api_secret=Y", "broker.api_secret", "environment"),
    _override_case(
        "secret-smtp-password",
        "alerts.email.password=hunter2",
        "alerts.email.password",
        "OTONOM_SMTP_PASSWORD",
    ),
    _override_case(
        "secret-telegram-token",
        "alerts.telegram.bot_token=123:abc",
        "alerts.telegram.bot_token",
        "OTONOM_TELEGRAM_BOT_TOKEN",
    ),
    _override_case(
        "secret-inside-a-mapping", "+broker.options={secret: x}", "broker.options", "environment"
    ),
    _override_case("secret-appended-key", "+broker.api_key=X", "broker.api_key", "environment"),
    _override_case(
        "secret-telegram-url",
        "alerts.urls=[tgram://123456:AAbotTOKEN/4242]",
        "alerts.urls",
        "token",
    ),
    _override_case(
        "secret-db-url-password",
        "db.url=postgresql+psycopg://u:pw@127.0.0.1/db",
        "db.url",
        "OTONOM_DB_URL",
    ),
    Case(
        "cli-secret-override",
        "overrides",
        "cli",
        ("-o", "broker.api_key=X", "kill-switch", "status"),
        ("broker.api_key", "environment"),
        subprocess=True,
    ),
]

FLOW_FLAG_CASES = [
    Case("flow-unknown-flag", "cli", "flow", ("--bogus",), ("--bogus", "unknown flag")),
    Case(
        "flow-db-flag", "cli", "flow", ("--db", "x.db"), ("--db", "unknown flag"), subprocess=True
    ),
    Case("flow-cfg-without-job", "cli", "flow", ("--cfg",), ("--cfg", "'job'")),
    Case("flow-cfg-unknown", "cli", "flow", ("--cfg", "everything"), ("--cfg", "'job'")),
    Case(
        "flow-cfg-bad-override",
        "cli",
        "flow",
        ("--cfg", "job", "paper.initial_cash=inf"),
        ("paper.initial_cash", "finite number"),
    ),
]

# -- CLI flags -----------------------------------------------------------------------------------


def _cli_case(
    id: str,
    argv: tuple[str, ...],
    *expect: str,
    subprocess: bool = False,
    files: Mapping[str, FileContent] | None = None,
    outside: tuple[str, ...] = (),
) -> Case:
    return Case(
        f"cli-{id}",
        "cli",
        "cli",
        argv,
        expect,
        files=files or {},
        subprocess=subprocess,
        outside=outside,
    )


CLI_CASES = [
    _cli_case(
        "limit-negative",
        ("kill-switch", "status", "--limit", "-5"),
        "--limit",
        "1 to 1000",
        subprocess=True,
    ),
    _cli_case("limit-zero", ("kill-switch", "status", "--limit", "0"), "--limit", "1 to 1000"),
    _cli_case(
        "limit-huge", ("kill-switch", "status", "--limit", "99999999"), "--limit", "1 to 1000"
    ),
    _cli_case("limit-text", ("kill-switch", "status", "--limit", "ten"), "--limit", "whole number"),
    _cli_case("trip-without-reason", ("kill-switch", "trip"), "--reason", "required"),
    _cli_case(
        "trip-empty-reason",
        ("kill-switch", "trip", "--reason", "  "),
        "--reason",
        "must not be empty",
        subprocess=True,
    ),
    _cli_case(
        "trip-reason-too-long",
        ("kill-switch", "trip", "--reason", "r" * 600),
        "--reason",
        "at most 500",
    ),
    _cli_case(
        "trip-actor-too-long",
        ("kill-switch", "trip", "--reason", "x", "--actor", "a" * 100),
        "--actor",
        "1 to 64",
    ),
    _cli_case(
        "book-too-long", ("kill-switch", "status", "--book", "b" * 40), "--book", "at most 32"
    ),
    _cli_case("kill-switch-no-action", ("kill-switch",), "ACTION", "required"),
    _cli_case(
        "plot-nonexistent-dir",
        ("shadow-report", "--plot", "/nonexistent_dir/x/y.png"),
        "--plot",
        "/nonexistent_dir/x",
        "does not exist",
        subprocess=True,
        outside=("/nonexistent_dir",),
    ),
    _cli_case("plot-not-png", ("shadow-report", "--plot", "{ws}/report.txt"), "--plot", ".png"),
    _cli_case(
        "plot-is-directory",
        ("shadow-report", "--plot", "{ws}/plots.png"),
        "--plot",
        "is a directory",
        files={"plots.png/keep": "x"},
    ),
    _cli_case("since-garbage", ("shadow-report", "--since", "yesterdayish"), "--since", "ISO date"),
    _cli_case("until-garbage", ("shadow-report", "--until", "later"), "--until", "ISO date"),
    _cli_case(
        "since-after-until",
        ("shadow-report", "--since", "2025-02-01", "--until", "2025-01-01"),
        "--since",
        "is after --until",
    ),
    _cli_case("pairs-negative", ("shadow-report", "--pairs", "-1"), "--pairs", "0 to 10000"),
    _cli_case("pairs-huge", ("shadow-report", "--pairs", "1000000"), "--pairs", "0 to 10000"),
    _cli_case(
        "mode-unknown",
        ("daemon-once", "--mode", "turbo"),
        "--mode",
        "invalid choice",
        subprocess=True,
    ),
    _cli_case(
        "guardrails-unknown",
        ("daemon-once", "--guardrails", "ultra"),
        "--guardrails",
        "invalid choice",
    ),
    _cli_case(
        "mode-contradicts-override",
        ("daemon-once", "--mode", "paper", "-o", "mode=shadow"),
        "mode",
        "mode=shadow",
        "give one",
        subprocess=True,
    ),
    _cli_case(
        "guardrails-flag-and-override",
        ("daemon-once", "--broker-config", "{ws}/b.yaml", "-o", "broker.sim.seed=3"),
        "broker_config_path",
        "give one",
        files={"b.yaml": "kind: sim\n"},
    ),
    _cli_case("unknown-command", ("launch",), "invalid choice", "launch"),
    _cli_case("no-command", (), "COMMAND", "required"),
    _cli_case(
        "unknown-global-flag", ("--verbose", "kill-switch", "status"), "--verbose", "unrecognized"
    ),
    _cli_case(
        "bad-override",
        ("-o", "paper.initial_cash=inf", "shadow-report"),
        "paper.initial_cash",
        "finite number",
    ),
    _cli_case(
        "bad-override-group",
        ("-o", "guardrails=ultra", "kill-switch", "status"),
        "guardrails",
        "no option",
    ),
    _cli_case(
        "drill-mode-live", ("drill", "kill-switch", "--mode", "live"), "--mode", "invalid choice"
    ),
    _cli_case(
        "drill-guardrails-off",
        ("-o", "guardrails=off", "drill", "kill-switch"),
        "guardrails",
        "nothing to drill",
    ),
    _cli_case(
        "outbox-status-unknown",
        ("alerts", "outbox", "--status", "lost"),
        "--status",
        "invalid choice",
    ),
]

# -- broker.yaml (the guide's file, through daemon-once --broker-config) --------------------------


def _broker_case(
    id: str,
    content: FileContent | None,
    *expect: str,
    mode: str = "shadow",
    subprocess: bool = False,
    env: Mapping[str, str] | None = None,
) -> Case:
    files = {} if content is None else {"broker.yaml": content}
    return Case(
        f"broker-{id}",
        "broker",
        "cli",
        ("daemon-once", "--broker-config", "{ws}/broker.yaml", "--mode", mode),
        expect,
        files=files,
        subprocess=subprocess,
        env=env or {},
    )


BROKER_CASES = [
    _broker_case("empty-file", "", "broker.yaml", "kind", subprocess=True),
    _broker_case("empty-mapping", "{}\n", "broker.yaml", "kind"),
    _broker_case("without-kind", "testnet: true\n", "broker.yaml: kind", "is required"),
    _broker_case(
        "kind-unknown", "kind: notanexchange\n", "broker.yaml", "notanexchange", "ccxt id"
    ),
    _broker_case(
        "binance-without-keys",
        "kind: binance\ntestnet: true\n",
        "broker.api_key",
        "BINANCE_TESTNET_API_KEY",
        subprocess=True,
    ),
    _broker_case(
        "production-unconfirmed",
        "kind: binance\ntestnet: false\n",
        "mode.confirm_production",
        "real money",
        mode="live",
        env={"BINANCE_API_KEY": "k", "BINANCE_API_SECRET": "s"},
    ),
    _broker_case(
        "base-url-not-url",
        "kind: binance\nbase_url: testnet.binance.vision\n",
        "broker.yaml: base_url",
        "http(s)://",
    ),
    _broker_case("unknown-key", "kind: sim\nleverage: 100\n", "broker.yaml: leverage"),
    _broker_case(
        "timeout-negative", "kind: sim\ntimeout_ms: -1\n", "broker.yaml: timeout_ms", "positive"
    ),
    _broker_case(
        "timeout-huge",
        "kind: sim\ntimeout_ms: 100000000\n",
        "broker.yaml: timeout_ms",
        "[1, 300000]",
    ),
    _broker_case(
        "sim-latency-1e12",
        "kind: sim\nsim:\n  latency_ms_mean: 1.0e12\n",
        "broker.yaml: sim.latency_ms_mean",
        "[0, 60000]",
    ),
    _broker_case(
        "sim-reject-5",
        "kind: sim\nsim:\n  reject_probability: 5\n",
        "broker.yaml: sim.reject_probability",
        "[0, 1]",
    ),
    _broker_case(
        "sim-cash-inf",
        "kind: sim\nsim:\n  initial_cash: .inf\n",
        "broker.yaml: sim.initial_cash",
        "finite number",
    ),
    _broker_case("kind-list", "kind: [binance]\n", "broker.yaml: kind"),
    _broker_case("yaml-syntax", "kind: sim\n  base_url: [\n", "broker.yaml", "not valid YAML"),
    _broker_case("top-level-list", "- kind: sim\n", "broker.yaml", "expected a mapping"),
    _broker_case(
        "deep-nesting",
        "kind: sim\noptions: " + "[" * 5000 + "\n",
        "broker.yaml",
        "nested more than 32 levels",
    ),
    _broker_case("binary", b"\x00\xff\xfe" * 100, "broker.yaml", "not a text (UTF-8)"),
    _broker_case("missing-file", None, "broker.yaml", "not found"),
    _broker_case("duplicate-kind", "kind: sim\nkind: binance\n", "broker.yaml", "appears twice"),
    _broker_case(
        "unset-env",
        "kind: sim\nbase_url: ${oc.env:OTONOM_CORPUS_UNSET}\n",
        "broker.yaml: base_url",
        "OTONOM_CORPUS_UNSET",
    ),
]

# -- alerts.yaml (the guide's file, through alerts test --config) ---------------------------------


def _alerts_case(
    id: str, content: FileContent | None, *expect: str, subprocess: bool = False
) -> Case:
    files = {} if content is None else {"alerts.yaml": content}
    return Case(
        f"alerts-{id}",
        "alerts",
        "cli",
        ("alerts", "test", "--config", "{ws}/alerts.yaml"),
        ("alerts.yaml", *expect),
        files=files,
        subprocess=subprocess,
    )


ALERT_CASES = [
    _alerts_case("missing-file", None, "not found", subprocess=True),
    _alerts_case("yaml-syntax", "email: [\n", "not valid YAML"),
    _alerts_case("top-level-list", "- url\n", "mapping"),
    _alerts_case("unknown-key", "pager: true\n", "pager"),
    _alerts_case("smtp-port", "email:\n  smtp_port: 70000\n", "email.smtp_port", "must be a port"),
    _alerts_case(
        "email-no-recipient",
        "email:\n  enabled: true\n  to_addrs: []\n",
        "email.to_addrs",
        "recipient",
    ),
    _alerts_case(
        "telegram-no-token",
        "telegram:\n  enabled: true\n  chat_id: 1\n",
        "telegram.bot_token",
        "required",
    ),
    _alerts_case("url-not-url", "urls: [notaurl]\n", "urls[0]", "Apprise", subprocess=True),
    _alerts_case(
        "route-unknown-channel",
        "routes:\n  pager: {min_severity: info}\n",
        "routes",
        "no channel named 'pager'",
    ),
    _alerts_case(
        "route-severity-unknown",
        "routes:\n  email: {min_severity: loud}\n",
        "min_severity",
        "info, warning, error, critical",
    ),
    _alerts_case("gap-negative", "max_gap_minutes: -1\n", "max_gap_minutes", "positive"),
    _alerts_case("timeout-1000", "timeout_seconds: 1000\n", "timeout_seconds", "(0, 60]"),
    _alerts_case(
        "unset-env",
        "telegram:\n  bot_token: ${oc.env:OTONOM_CORPUS_UNSET}\n",
        "OTONOM_CORPUS_UNSET",
    ),
    _alerts_case("deep-nesting", "urls: " + "[" * 200_000 + "\n", "nested more than 32 levels"),
    _alerts_case("too-large", "# " + "x" * 1_100_000 + "\n", "at most 1000000"),
    _alerts_case("attempts-huge", "max_attempts: 100000\n", "max_attempts", "[1, 1000]"),
    _alerts_case(
        "cooldown-inf",
        "dedupe_cooldown_minutes: .inf\n",
        "dedupe_cooldown_minutes",
        "finite number",
    ),
    _alerts_case("binary", bytes(range(256)), "not a text (UTF-8)"),
]

# -- CSV files (data=csv) ------------------------------------------------------------------------

CSV_HEADER = "timestamp,open,high,low,close,volume\n"
GOOD_ROW = "2025-06-01T00:00:00Z,100,101,99,100.5,10\n"


def _csv_case(id: str, content: FileContent | None, *expect: str, subprocess: bool = False) -> Case:
    files = {} if content is None else {"d.csv": content}
    return Case(
        f"csv-{id}",
        "csv",
        "flow",
        ("data=csv", "data.csv_path={ws}/d.csv"),
        ("data.csv_path", *expect),
        files=files,
        subprocess=subprocess,
    )


CSV_CASES = [
    _csv_case(
        "close-1e300",
        CSV_HEADER + GOOD_ROW + "2025-06-01T01:00:00Z,100,101,99,1e300,10\n",
        "d.csv:3",
        "close '1e300'",
        "at most 1e+15",
        subprocess=True,
    ),
    _csv_case(
        "open-inf",
        CSV_HEADER + "2025-06-01T00:00:00Z,inf,101,99,100,10\n",
        "d.csv:2",
        "open 'inf'",
        "finite",
    ),
    _csv_case(
        "high-nan",
        CSV_HEADER + "2025-06-01T00:00:00Z,100,nan,99,100,10\n",
        "d.csv:2",
        "high 'nan'",
        "finite",
    ),
    _csv_case(
        "volume-huge",
        CSV_HEADER + "2025-06-01T00:00:00Z,100,101,99,100,1e20\n",
        "d.csv:2",
        "volume",
        "at most 1e+15",
    ),
    _csv_case(
        "close-text",
        CSV_HEADER + "2025-06-01T00:00:00Z,100,101,99,abc,10\n",
        "d.csv:2",
        "close 'abc' is not a number",
    ),
    _csv_case(
        "timestamp-garbage",
        CSV_HEADER + "yesterday,100,101,99,100,10\n",
        "d.csv:2",
        "timestamp 'yesterday'",
    ),
    _csv_case(
        "timestamp-overflow",
        CSV_HEADER + "99999999999999999999,100,101,99,100,10\n",
        "d.csv:2",
        "epoch ms",
    ),
    _csv_case(
        "missing-column",
        "timestamp,open,high,low,close\n" + "1,1,1,1,1\n",
        "missing column(s) volume",
    ),
    _csv_case("empty-file", "", "missing column(s)"),
    _csv_case("binary", bytes(range(256)) * 10, "not a readable CSV file"),
    _csv_case(
        "nul-byte",
        CSV_HEADER + "2025-06-01T00:00:00Z,1\x00,1,1,1,1\n",
        "d.csv:2",
        "open",
        "is not a number",
    ),
    _csv_case(
        "huge-field",
        CSV_HEADER + "2025-06-01T00:00:00Z," + "9" * 200_000 + ",1,1,1,1\n",
        "not a readable CSV file",
    ),
    _csv_case("missing-file", None, "CSV file not found"),
    _csv_case(
        "symbol-bad",
        "timestamp,open,high,low,close,volume,symbol\n2025-06-01T00:00:00Z,100,101,99,100,10,???\n",
        "d.csv:2",
        "BASE/QUOTE",
    ),
    Case(
        "csv-is-directory",
        "csv",
        "flow",
        ("data=csv", "data.csv_path={ws}/dir.csv"),
        ("data.csv_path", "dir.csv", "expected a CSV file"),
        files={"dir.csv/keep": "x"},
    ),
]

# -- databases -----------------------------------------------------------------------------------


def migrated(path: Path) -> None:
    """A database at the newest schema (what a previous run left behind)."""
    from otonom_trader.persistence import Database

    Database(path).dispose()


def damaged(*statements: str) -> Callable[[Path], None]:
    """A migrated database, then ``statements`` run on it (a dropped table, a bad revision)."""

    def build(path: Path) -> None:
        migrated(path)
        conn = sqlite3.connect(path)
        try:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()

    return build


def truncated(path: Path) -> None:
    migrated(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _db_case(
    id: str,
    content: FileContent | None,
    *expect: str,
    entry: str = "flow",
    subprocess: bool = False,
    name: str = "x.db",
) -> Case:
    argv = (
        (f"db.url={{ws}}/{name}",)
        if entry == "flow"
        else ("--db", f"{{ws}}/{name}", "kill-switch", "status")
    )
    files = {} if content is None else {name: content}
    return Case(
        f"database-{id}-{entry}",
        "database",
        entry,
        argv,
        expect,
        files=files,
        subprocess=subprocess,
    )


DATABASE_CASES = [
    _db_case(
        "fills-dropped",
        damaged("DROP TABLE fills"),
        "x.db",
        "'fills' is missing",
        "damaged",
        subprocess=True,
    ),
    _db_case(
        "fills-dropped",
        damaged("DROP TABLE fills"),
        "x.db",
        "'fills' is missing",
        entry="cli",
        subprocess=True,
    ),
    _db_case(
        "orders-dropped", damaged("DROP TABLE fills", "DROP TABLE orders"), "x.db", "is missing"
    ),
    _db_case(
        "snapshots-dropped",
        damaged("DROP TABLE portfolio_snapshots"),
        "x.db",
        "'portfolio_snapshots' is missing",
    ),
    _db_case(
        "shadow-pairs-dropped",
        damaged("DROP TABLE shadow_pairs"),
        "x.db",
        "'shadow_pairs' is missing",
        entry="cli",
    ),
    _db_case(
        "kill-switch-dropped",
        damaged("DROP TABLE kill_switch_events"),
        "x.db",
        "is missing",
        entry="cli",
    ),
    _db_case(
        "column-dropped",
        damaged("ALTER TABLE daemon_runs DROP COLUMN config_hash"),
        "x.db",
        "'daemon_runs' lacks column 'config_hash'",
    ),
    _db_case(
        "newer-revision",
        damaged("INSERT INTO alembic_version VALUES ('9999_future')"),
        "x.db",
        "9999_future",
        "newer version",
    ),
    _db_case(
        "no-revision-table", damaged("DROP TABLE alembic_version"), "x.db", "no schema revision"
    ),
    _db_case(
        "random-bytes", b"definitely not sqlite " * 100, "x.db", "not a usable SQLite database"
    ),
    _db_case(
        "random-bytes",
        b"definitely not sqlite " * 100,
        "x.db",
        "not a usable SQLite database",
        entry="cli",
    ),
    _db_case("truncated", truncated, "x.db", "not a usable SQLite database"),
    Case(
        "database-is-directory",
        "database",
        "flow",
        ("db.url={ws}/dir.db",),
        ("dir.db", "found a directory"),
        files={"dir.db/keep": "x"},
    ),
    Case(
        "database-parent-missing",
        "database",
        "flow",
        ("db.url={ws}/no/such/dir/x.db",),
        ("no/such/dir", "does not exist"),
        subprocess=True,
    ),
    Case(
        "database-parent-missing-cli",
        "database",
        "cli",
        ("--db", "{ws}/nowhere/x.db", "shadow-report"),
        ("nowhere", "does not exist"),
    ),
    Case(
        "database-uri-filename",
        "database",
        "cli",
        ("--db", "file:{ws}/x.db?mode=ro", "kill-switch", "status"),
        ("file:", "not supported", "give a file path"),
        files={"x.db": migrated},
        subprocess=True,
    ),
    Case(
        "database-sim-account-garbage",
        "database",
        "flow",
        ("mode=shadow", "db.url={ws}/x.db"),
        ("x.sim-exchange.json", "unreadable simulated exchange account", "move the file away"),
        files={"x.db": migrated, "x.sim-exchange.json": "garbage{"},
        subprocess=True,
    ),
    Case(
        "database-sim-account-wrong-shape",
        "database",
        "cli",
        ("--db", "{ws}/x.db", "daemon-once", "--mode", "shadow"),
        ("x.sim-exchange.json", "unreadable simulated exchange account"),
        files={"x.db": migrated, "x.sim-exchange.json": '{"balances": {"USDT": "lots"}}'},
    ),
    Case(
        "database-home-is-a-file",
        "database",
        "cli",
        ("kill-switch", "status"),
        ("OTONOM_HOME", "homefile", "is a file, not a directory"),
        files={"homefile": "not a directory"},
        env={"OTONOM_HOME": "{ws}/homefile/nested"},
    ),
    Case(
        "database-url-bad-port",
        "database",
        "flow",
        ("db.url=postgresql+psycopg://h:notaport/db",),
        ("not a usable database URL", "notaport", "expected a SQLite path or dialect+driver://"),
    ),
    Case(
        "database-driver-unknown",
        "database",
        "flow",
        ("db.url=nosuchdb://h/db",),
        ("nosuchdb://h/db", "not a usable database URL", "Can't load plugin"),
        subprocess=True,
    ),
    Case(
        "database-driver-unknown-cli",
        "database",
        "cli",
        ("--db", "postgresql+nodriver://h/db", "kill-switch", "status"),
        ("postgresql+nodriver", "not a usable database URL"),
    ),
]

# -- the library (TradingDaemon is not a command, so its cases are in tests/daemon) -------------

ALL_CASES: list[Case] = [
    *OVERRIDE_CASES,
    *SECRET_CASES,
    *FLOW_FLAG_CASES,
    *STRATEGY_CASES,
    *STRATEGY_FILE_CASES,
    *BROKER_CASES,
    *ALERT_CASES,
    *CLI_CASES,
    *CSV_CASES,
    *DATABASE_CASES,
]
SUBPROCESS_CASES = [case for case in ALL_CASES if case.subprocess]
