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

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from otonom_trader.broker.factory import load_broker_config
from otonom_trader.config.compose import compose_raw, config_hash
from otonom_trader.config.errors import ConfigError
from otonom_trader.config.schema import AppConfig
from otonom_trader.config.validation import check_inputs, check_values, compose_validated
from otonom_trader.daemon.summary import RunSummary
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.mode import ExecutionMode

if TYPE_CHECKING:
    # The wiring (database, brokers, strategy) is imported when a cycle is first built: importing
    # the package, or composing and checking a configuration, does not load it.
    from omegaconf import DictConfig

    from otonom_trader.daemon.context import CycleContext

log = logging.getLogger("otonom_trader.daemon")


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
        #: The composition of ``overrides`` to cache once a cycle starts (None: given a config).
        self._composed: tuple[list[str], DictConfig] | None = None
        if config is None:
            raw, app = compose_validated(overrides)
            self._composed = (overrides, raw)
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
            from otonom_trader.daemon.context import build_context

            self._context = build_context(self.config, self.config_hash, clock=self._clock)
            if self._composed is not None:
                from otonom_trader.config.compose_cache import remember_composition

                remember_composition(*self._composed)  # the next start skips Hydra
        return self._context

    def run_once(self, run_id: str | None = None) -> RunSummary:
        """Run one cycle and return its summary (``otonom_trader.daemon.cycle.run_cycle``).

        A failed step marks the run failed and re-raises; trading state stays consistent
        because every write is transactional. When another cycle holds the account, the run
        is ``skipped``: nothing is read or sent, and the summary says who holds it.

        The summary is also logged (logger ``otonom_trader.daemon``, INFO): its headline, then
        one line per signal to act on, per order, per fill and per data issue."""
        from otonom_trader.daemon.cycle import run_cycle

        summary = run_cycle(self.context, run_id)
        for line in summary.log_lines():
            log.info("%s", line)
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
    """An explicit argument and an override that sets the same thing differently: refuse rather
    than let one silently win (``mode=ExecutionMode.PAPER`` with ``overrides=["mode=shadow"]``).
    The same value given both ways is no contradiction."""
    config = arguments.pop("config")
    for name, value in arguments.items():
        if value is None:
            continue
        given = str(value.value if isinstance(value, ExecutionMode) else value)
        for item in overrides:
            key, _, text = item.partition("=")
            key = key.strip().lstrip("+~")
            in_section = key.split(".", 1)[0] == _ARGUMENT_SECTIONS.get(name)
            differs = key in _ARGUMENT_KEYS.get(name, ()) and text.strip().lower() != given.lower()
            if in_section or differs:
                raise ConfigError(
                    f"the {name}= argument says {given!r} but the override {item!r} says "
                    "otherwise; give one",
                    key=name,
                )
    if config is not None and overrides:
        raise ConfigError(
            f"both config= and overrides ({overrides[0]!r}) were given; give one",
            key="overrides",
        )
