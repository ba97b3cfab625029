"""Prefect flow-state hooks: a failed or crashed daemon run sends one alert.

Attach them to the daemon flow::

    @flow(on_failure=[alert_on_flow_failure], on_crashed=[alert_on_flow_crashed])
    def daemon(overrides: list[str] = []): ...

Prefect 3.9 runs hooks outside the run context with ``(flow, flow_run, state)``; ``on_failure``
fires once, after the last retry. The hook rebuilds the configuration from the run's
``overrides`` parameter (the flow's parameters never hold secrets: the channels' secrets come
from the environment of the process running the hook). When the full configuration cannot be
rebuilt, the hook still alerts with what it can: the ``alerts``/``db`` overrides alone, then the
defaults, and says so in the alert. A hook never raises.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from otonom_trader.alerts.channels import MASKER
from otonom_trader.alerts.config import AlertEvent, AlertsConfig, Severity
from otonom_trader.alerts.engine import AlertEngine, AlertReport
from otonom_trader.persistence.database import Database

log = logging.getLogger("otonom_trader.alerts.hooks")

# Override keys whose values may be secrets (or URLs carrying them): never echoed in alerts.
_SECRET_KEY = re.compile(r"(token|password|secret|api_key|apikey|key|url|urls)$", re.IGNORECASE)


@dataclass
class _HookContext:
    alerts: AlertsConfig
    db_url: str | None
    busy_timeout_ms: int
    mode: str
    config_problem: str | None


def alert_on_flow_failure(flow: Any, flow_run: Any, state: Any) -> AlertReport | None:
    """``on_failure`` hook: one critical alert naming the run, the error and the mode."""
    return _alert(flow, flow_run, state, AlertEvent.FLOW_FAILURE, "failed")


def alert_on_flow_crashed(flow: Any, flow_run: Any, state: Any) -> AlertReport | None:
    """``on_crashed`` hook (SIGTERM, lost infrastructure): one critical alert."""
    return _alert(flow, flow_run, state, AlertEvent.FLOW_CRASHED, "crashed")


def mask_overrides(overrides: list[str]) -> list[str]:
    """The overrides with the values of secret-looking keys replaced by ``****``."""
    masked = []
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if sep and _SECRET_KEY.search(key.strip().lstrip("+~")):
            masked.append(f"{key}=****")
        else:
            masked.append(MASKER.mask(str(item)))
    return masked


def _alert(
    flow: Any, flow_run: Any, state: Any, event: AlertEvent, verb: str
) -> AlertReport | None:
    logger: Any = log
    try:
        from prefect.logging.loggers import flow_run_logger

        logger = flow_run_logger(flow_run, flow)
    except Exception:  # noqa: BLE001 - fall back to the module logger
        logger = log
    try:
        overrides = list((getattr(flow_run, "parameters", None) or {}).get("overrides") or [])
        ctx = _context(overrides)
        flow_name = getattr(flow, "name", None) or getattr(flow_run, "flow_name", "?")
        run_name = getattr(flow_run, "name", "?")
        run_id = getattr(flow_run, "id", "?")
        state_name = getattr(state, "name", None) or str(getattr(state, "type", "?"))
        error = getattr(state, "message", None) or "(no message)"
        lines = [
            f"Flow run '{run_name}' of flow '{flow_name}' {verb}.",
            f"Run id: {run_id}",
            f"State: {state_name}",
            f"Error: {error}",
            f"Mode: {ctx.mode}",
            f"Overrides: {' '.join(mask_overrides(overrides)) or '(none)'}",
        ]
        if ctx.config_problem:
            lines.append(
                f"Configuration could not be rebuilt ({ctx.config_problem}); "
                "this alert used the channels that could still be configured."
            )
        db = Database(ctx.db_url, busy_timeout_ms=ctx.busy_timeout_ms)
        try:
            engine = AlertEngine(ctx.alerts, db=db, mode=ctx.mode)
            report = engine.notify(
                f"Daemon flow run {run_name} {verb} ({ctx.mode})",
                "\n".join(lines),
                event=event,
                severity=Severity.CRITICAL,
                dedupe_key=f"{event.value}:{run_id}",
            )
        finally:
            db.dispose()
        sent = [o.channel for o in report.outcomes if o.sent]
        others = [f"{o.channel}={o.status}" for o in report.outcomes if not o.sent]
        logger.info(
            "flow %s alert: sent to %s%s",
            verb,
            ", ".join(sent) or "no channel",
            f" ({', '.join(others)})" if others else "",
        )
        return report
    except Exception as exc:  # noqa: BLE001 - a hook must never raise
        logger.error(
            "flow %s alert could not be sent: %s", verb, MASKER.mask(f"{type(exc).__name__}: {exc}")
        )
        return None


def _context(overrides: list[str]) -> _HookContext:
    """The alerts config, database and mode of the run, as far as they can be rebuilt."""
    from otonom_trader.config.compose import load_config

    mode = _mode_from_overrides(overrides)
    problem: str | None = None
    attempts = [overrides, [o for o in overrides if _is_alerts_or_db(o)], []]
    for candidate in attempts:
        try:
            _, app = load_config(candidate)
        except Exception as exc:  # noqa: BLE001 - ConfigError, or a broken conf/ tree
            problem = problem or MASKER.mask(str(exc))
            continue
        return _HookContext(
            alerts=app.alerts,
            db_url=app.db.url,
            busy_timeout_ms=app.db.busy_timeout_ms,
            mode=str(app.mode.name) if candidate is overrides else mode,
            config_problem=problem,
        )
    return _HookContext(AlertsConfig(), None, 5_000, mode, problem)


def _is_alerts_or_db(override: str) -> bool:
    key = str(override).split("=", 1)[0].lstrip("+~")
    return key.split(".", 1)[0] in ("alerts", "db")


def _mode_from_overrides(overrides: list[str]) -> str:
    for item in overrides:
        key, _, value = str(item).partition("=")
        if key.lstrip("+~") in ("mode", "mode.name"):
            return value or "unknown"
    return "paper (default)"
