"""``GuardrailConfig``: the kill-switch limits (the guide's section 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Optional  # noqa: UP035 - OmegaConf 2.3 structured configs need typing.Optional

from otonom_trader.config.errors import parse_choice, require, require_booleans, require_pct


class HaltPolicy(StrEnum):
    """What a halted broker still lets through. Cancels always pass."""

    REJECT_ALL = "reject_all"  # the guide's behaviour: every new order is rejected
    REDUCE_ONLY = "reduce_only"  # orders that only shrink an existing position pass


@dataclass
class AccountGuardConfig:
    """The account-level guardrail of a fleet (``guardrails.account.*``): limits over the
    account's *total* equity (what the exchange holds), shared by every named bot trading it.

    When breached, the account's own kill-switch trips and every bot on the account is halted at
    once, whatever each bot's own profile says. It applies only to named bots on an exchange
    account: an unnamed single bot's profile already watches the whole account, and a paper book
    has no shared money. Off with ``enabled: false`` or with ``guardrails.enabled: false``.

    * ``max_daily_loss_pct``: halt every bot when the account's equity is this % below its equity
      at the start of the UTC day (the hold lasts until the next 00:00 UTC).
    * ``max_drawdown_pct``: halt every bot while the account's equity is this % below its peak.
    """

    max_daily_loss_pct: float = 10.0
    max_drawdown_pct: float = 40.0
    enabled: bool = True

    def __post_init__(self) -> None:
        require_booleans(self)
        require_pct(self.max_daily_loss_pct, "max_daily_loss_pct")
        require_pct(self.max_drawdown_pct, "max_drawdown_pct")


@dataclass
class GuardrailConfig:
    """Kill-switch limits, evaluated on the executing book's equity.

    * ``max_daily_loss_pct``: halt when equity is this % below the equity at the start of the
      UTC day.
    * ``max_drawdown_pct``: halt when equity (open positions marked to market) is this % below
      its peak.
    * ``max_consecutive_losses``: halt when the last N closed trades all lost money.
    * ``consecutive_loss_cooldown_hours``: how long a consecutive-loss halt lasts; ``None``
      means until the next UTC day.

    For a named bot (``bot.name``) these are the bot's own profile, evaluated on the bot's book
    (its ``bot.capital`` plus what its own fills made or lost); ``account`` holds the limits over
    the whole account that halt all its bots at once.
    """

    max_daily_loss_pct: float = 5.0
    max_drawdown_pct: float = 40.0
    max_consecutive_losses: int = 5
    enabled: bool = True
    halt_policy: str = HaltPolicy.REJECT_ALL.value
    consecutive_loss_cooldown_hours: Optional[float] = None  # noqa: UP045
    #: The account-level guardrail of named bots sharing an account (``AccountGuardConfig``).
    account: AccountGuardConfig = field(default_factory=AccountGuardConfig)

    def __post_init__(self) -> None:
        require_booleans(self)
        require_pct(self.max_daily_loss_pct, "max_daily_loss_pct")
        require_pct(self.max_drawdown_pct, "max_drawdown_pct")
        require(
            self.max_consecutive_losses >= 1,
            "max_consecutive_losses",
            f"must be at least 1, got {self.max_consecutive_losses}",
        )
        self.halt_policy = parse_choice(self.halt_policy, HaltPolicy, "halt_policy")
        if self.consecutive_loss_cooldown_hours is not None:
            require(
                self.consecutive_loss_cooldown_hours > 0,
                "consecutive_loss_cooldown_hours",
                f"must be positive (or null for 'next UTC day'), got "
                f"{self.consecutive_loss_cooldown_hours}",
            )
