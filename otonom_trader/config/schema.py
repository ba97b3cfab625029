"""The typed schema of the whole configuration, registered in Hydra's ConfigStore.

``conf/config.yaml`` lists ``schema`` first in its defaults, so every group option is merged into
these dataclasses: an unknown key or a wrong type fails while Hydra composes, and each section's
``__post_init__`` checks its values (a negative limit, a percentage over 100) right after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional  # noqa: UP035 - OmegaConf 2.3 needs typing.Optional

from otonom_trader.alerts.config import AlertsConfig
from otonom_trader.broker.config import BrokerConfig
from otonom_trader.config.errors import parse_choice, require, require_booleans
from otonom_trader.execution.config import ExecutionConfig
from otonom_trader.fleet.config import BotConfig
from otonom_trader.guardrails.config import GuardrailConfig
from otonom_trader.market.config import DataConfig
from otonom_trader.mode import ExecutionMode
from otonom_trader.paper.config import PaperConfig
from otonom_trader.promotion.config import PromotionConfig


@dataclass
class ModeConfig:
    """Execution mode. LIVE (or SHADOW) on a production exchange needs
    ``confirm_production: true`` or ``OTONOM_CONFIRM_PRODUCTION=yes`` in the environment."""

    name: str = ExecutionMode.PAPER.value
    paper_book_in_live: bool = True
    confirm_production: bool = False

    def __post_init__(self) -> None:
        require_booleans(self)
        self.name = parse_choice(self.name, ExecutionMode, "name")

    @property
    def execution_mode(self) -> ExecutionMode:
        """``name`` as an ``ExecutionMode``."""
        return ExecutionMode(self.name)


@dataclass
class StrategyConfig:
    """Which strategy file to run (relative paths: the working directory, then the project)."""

    path: str = "strategies/baseline_v1.0.yaml"

    def __post_init__(self) -> None:
        require(bool(self.path), "path", "must name a strategy YAML file")


@dataclass
class DbConfig:
    """The trading database. ``url: null`` means SQLite at ``$OTONOM_HOME/otonom.db``."""

    url: Optional[str] = field(default=None, repr=False)  # noqa: UP045 - may hold a password
    busy_timeout_ms: int = 5_000
    echo: bool = False

    def __post_init__(self) -> None:
        require_booleans(self)
        require(
            self.busy_timeout_ms >= 0,
            "busy_timeout_ms",
            f"must not be negative, got {self.busy_timeout_ms}",
        )


@dataclass
class AppConfig:
    """Everything one daemon cycle needs."""

    mode: ModeConfig = field(default_factory=ModeConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    guardrails: GuardrailConfig = field(default_factory=GuardrailConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    db: DbConfig = field(default_factory=DbConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    promotion: PromotionConfig = field(default_factory=PromotionConfig)
    bot: BotConfig = field(default_factory=BotConfig)


def register_schema() -> None:
    """Register ``AppConfig`` as ``schema`` (idempotent)."""
    from hydra.core.config_store import ConfigStore  # only composing needs Hydra

    ConfigStore.instance().store(name="schema", node=AppConfig)
