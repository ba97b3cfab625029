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

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from otonom_trader.broker.factory import load_broker_config
from otonom_trader.config.compose import compose_raw, config_hash, to_app_config
from otonom_trader.config.schema import AppConfig
from otonom_trader.daemon.context import CycleContext, build_context
from otonom_trader.daemon.cycle import run_cycle
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
        mode: ExecutionMode | str = ExecutionMode.PAPER,
        guard_cfg: GuardrailConfig | None = None,
        *,
        overrides: list[str] | None = None,
        config: AppConfig | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        raw = compose_raw(overrides or [])
        self.config_hash = config_hash(raw)
        app = config or to_app_config(raw)
        app.mode.name = ExecutionMode(mode) if config is None else app.mode.name
        if db_path is not None:
            app.db.url = str(db_path)
        if strategy_path is not None:
            app.strategy.path = str(strategy_path)
        if broker_config_path is not None:
            app.broker = load_broker_config(broker_config_path)
        if guard_cfg is not None:
            app.guardrails = replace(guard_cfg)
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
        """Run one cycle and return its summary (``otonom_trader.daemon.cycle.run_cycle``).

        A failed step marks the run failed and re-raises; trading state stays consistent
        because every write is transactional. When another cycle holds the account, the run
        is ``skipped``: nothing is read or sent, and the summary says who holds it."""
        return run_cycle(self.context, run_id)

    def close(self) -> None:
        """Release connections."""
        if self._context is not None:
            self._context.close()
            self._context = None
