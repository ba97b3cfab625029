"""``TradingDaemon``: one object that runs the cycle without Prefect (the guide's Python API).

    daemon = TradingDaemon(
        db_path="trader.db",
        strategy_path="strategies/baseline_v1.0.yaml",
        broker_config_path="config/broker.yaml",
        mode=ExecutionMode.SHADOW,
        guard_cfg=GuardrailConfig(max_daily_loss_pct=5.0),
    )
    summary = daemon.run_once()

Arguments left out come from the composed Hydra configuration (``conf/``, plus ``overrides``),
so the library, the CLI and the Prefect flow run the same configuration and the same steps.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from otonom_trader.broker.factory import load_broker_config
from otonom_trader.config.compose import compose_raw, config_hash
from otonom_trader.config.errors import ConfigError
from otonom_trader.config.schema import AppConfig
from otonom_trader.config.validation import check_inputs, check_values, compose_validated
from otonom_trader.daemon import steps
from otonom_trader.daemon.context import CycleContext, build_context
from otonom_trader.daemon.summary import RunSummary
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.mode import ExecutionMode


class TradingDaemon:
    """Runs trading cycles: fetch_signal → guard_check → execute → snapshot → health_check."""

    def __init__(
        self,
        db_path: str | Path | None = None,
        strategy_path: str | Path | None = None,
        broker_config_path: str | Path | None = None,
        mode: ExecutionMode | str | None = None,
        guard_cfg: GuardrailConfig | None = None,
        *,
        overrides: list[str] | None = None,
        config: AppConfig | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        overrides = list(overrides or [])
        _refuse_contradictions(
            overrides,
            mode=mode,
            db_path=db_path,
            strategy_path=strategy_path,
            broker_config_path=broker_config_path,
            guard_cfg=guard_cfg,
            config=config,
        )
        if config is None:
            raw, app = compose_validated(overrides)
        else:
            raw, app = compose_raw([]), config
        self.config_hash = config_hash(raw)
        if mode is not None:
            app.mode.name = _execution_mode(mode)
        if db_path is not None:
            app.db.url = str(db_path)
        if strategy_path is not None:
            app.strategy.path = str(strategy_path)
        if broker_config_path is not None:
            app.broker = load_broker_config(broker_config_path)
        if guard_cfg is not None:
            app.guardrails = replace(guard_cfg)
        # The one validation pass of the flow and the CLI, on the assembled configuration:
        # nothing is built, opened or sent before every input is known good.
        check_values(app)
        check_inputs(app)
        self.config = app
        self._clock = clock
        self._context: CycleContext | None = None

    @property
    def context(self) -> CycleContext:
        """The wired components, built on first use (validates the configuration)."""
        if self._context is None:
            self._context = build_context(self.config, self.config_hash, clock=self._clock)
        return self._context

    def run_once(self, run_id: str | None = None) -> RunSummary:
        """Run one cycle and return its summary. A failed step marks the run failed and
        re-raises; trading state stays consistent because every write is transactional."""
        ctx = self.context
        run_id = run_id or ctx.new_run_id()
        started = time.perf_counter()
        summary = steps.begin_run(ctx, run_id)
        try:
            now = ctx.clock()
            batch = steps.fetch_signal(ctx, now)
            summary.signals = steps.describe_signals(batch)
            summary.data_issues = list(batch.issues)
            guard = steps.guard_check(ctx, batch, now)
            summary.guard_active, summary.guard_reason = guard.active, guard.reason
            summary.orders = steps.execute(ctx, batch, run_id, summary)
            summary.books = steps.snapshot(ctx, batch.marks, run_id, ctx.clock())
            health = steps.health_check(ctx, run_id, ctx.clock())
            summary.heartbeat_gap_s, summary.broker_ping = (
                health.gap_since_previous_s,
                health.broker_ping,
            )
        except BaseException as exc:
            summary.duration_s = time.perf_counter() - started
            steps.finish_run(
                ctx, summary, "failed", "".join(traceback.format_exception_only(exc)).strip()
            )
            raise
        summary.duration_s = time.perf_counter() - started
        steps.finish_run(ctx, summary, "succeeded")
        return summary

    def close(self) -> None:
        """Release connections."""
        if self._context is not None:
            self._context.close()
            self._context = None


def _execution_mode(mode: ExecutionMode | str) -> ExecutionMode:
    try:
        return ExecutionMode(str(mode).lower())
    except ValueError:
        allowed = ", ".join(m.value for m in ExecutionMode)
        raise ConfigError(f"must be one of {allowed}, got {mode!r}", key="mode") from None


# The override keys that set what each explicit argument sets. A broker file and a
# GuardrailConfig replace their whole section, so any override inside it would be discarded.
_ARGUMENT_KEYS = {
    "mode": ("mode", "mode.name"),
    "db_path": ("db", "db.url"),
    "strategy_path": ("strategy", "strategy.path"),
}
_ARGUMENT_SECTIONS = {"broker_config_path": "broker", "guard_cfg": "guardrails"}


def _refuse_contradictions(overrides: list[str], **arguments: object) -> None:
    """An explicit argument and an override of the same setting: refuse rather than let one
    silently win (``mode=ExecutionMode.PAPER`` with ``overrides=["mode=shadow"]``)."""
    config = arguments.pop("config")
    for name, value in arguments.items():
        if value is None:
            continue
        for item in overrides:
            key = item.split("=", 1)[0].strip().lstrip("+~")
            if key in _ARGUMENT_KEYS.get(name, ()) or key.split(".", 1)[0] == (
                _ARGUMENT_SECTIONS.get(name)
            ):
                raise ConfigError(
                    f"both the {name}= argument and the override {item!r} set it; give one",
                    key=name,
                )
    if config is not None and overrides:
        raise ConfigError(
            f"both config= and overrides ({overrides[0]!r}) were given; give one",
            key="overrides",
        )
