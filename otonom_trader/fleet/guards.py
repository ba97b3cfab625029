"""Guardrails at two levels for bots sharing one account.

* **The bot's own switch** (scope ``bot:<name>``, or ``paper@<name>`` in PAPER) runs the bot's
  guardrail profile (``guardrails.*``: daily loss, drawdown, consecutive losses) on the bot's own
  book: its ``capital`` plus what its own fills made or lost. Another bot's losses never trip it.
* **The account's switch** (scope = the account id, the account book) runs ``guardrails.account``
  (daily loss, drawdown) on the account's *total* equity, as the exchange holds it. Every bot on
  the account consults it before each order and in its guard check, so one breach halts every bot
  on the account at once. Reconciliation's ``halt`` policy trips it too: a drift is the account's.

Both are ordinary persisted ``KillSwitch`` rows, so a halt survives a restart, shows in
``kill-switch status`` and is reset by ``kill-switch reset --bot`` / ``--account``.
An unnamed bot keeps the one switch of its executing book, exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from otonom_trader.config.schema import AppConfig
from otonom_trader.fleet.books import BotBooks
from otonom_trader.guardrails.kill_switch import GuardDecision, KillSwitch
from otonom_trader.guardrails.protections import build_account_guardrails
from otonom_trader.persistence.database import Database


@dataclass(frozen=True)
class BotSwitches:
    """The switch of the bot's own book and the switch of its account (the same object when
    the bot does not share an account)."""

    bot: KillSwitch
    account: KillSwitch

    @property
    def two_levels(self) -> bool:
        """True when the account's switch is a second level above the bot's."""
        return self.account is not self.bot


def build_switches(
    app: AppConfig,
    db: Database,
    books: BotBooks,
    *,
    on_transition_tx: Callable[..., Any] | None = None,
) -> BotSwitches:
    """The bot's switch, and the account's when the bot shares an exchange account."""
    own = KillSwitch(
        db,
        app.guardrails,
        books.guarded,
        on_transition_tx=on_transition_tx,
        bot=books.bot,
        account_id=books.account_id,
    )
    if not books.shares_account:
        return BotSwitches(own, own)
    assert books.account is not None
    account = KillSwitch(
        db,
        app.guardrails,
        books.account,
        on_transition_tx=on_transition_tx,
        guardrails=build_account_guardrails(app.guardrails),
        account_id=books.account_id,
        every_bot=True,
    )
    return BotSwitches(own, account)


def account_level(
    switch: KillSwitch, equity: Callable[[], Decimal], clock: Callable[[], datetime]
) -> Callable[[], GuardDecision]:
    """The account-level decision as a bot's gate asks it: the account's switch evaluated on
    the account's total equity now; a halt names the account."""

    def decide() -> GuardDecision:
        decision = switch.evaluate(equity(), clock())
        if not decision.active:
            return decision
        return replace(decision, reason=f"account {switch.book}: {decision.reason}")

    return decide
