"""``BotConfig``: which bot of a fleet a cycle runs as, and how much of the account is its own.

A bot is a named combination of strategy, account and mode. ``name`` empty (the default) is the
single unnamed bot of a one-bot database: books, switches and reports are named as they always
were, and the whole account is its money. A fleet file gives each bot ``bot.name=<name>`` among
its overrides; several named bots may then share one account (see ``otonom_trader.fleet.books``).

``capital`` is a named bot's allocation in the quote currency (e.g. 2000 USDT): the cash its own
book starts with. It sizes the bot's orders and is the equity its guardrails measure against, so
a bot never sizes from, nor halts on, another bot's money. A named bot trading an exchange account
needs one (``bot.capital > 0``); in PAPER mode it defaults to ``paper.initial_cash``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from otonom_trader.config.errors import ConfigError, require, require_booleans

#: Lower-case letters, digits, ``-`` and ``_``; starts with a letter or digit; at most 24 chars
#: (it becomes part of book names and Prefect deployment names).
BOT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")


@dataclass
class BotConfig:
    """The bot a cycle runs as (``bot.name``; empty = the unnamed single bot) and its
    allocation (``bot.capital``, quote currency; 0 = none given)."""

    name: str = ""
    capital: float = 0.0
    #: Spend each venue's request weight from a Prefect global rate limit shared by every worker
    #: of the fleet (``otonom_trader.fleet.venue_limit``), on top of this process's own budget.
    #: Only a cycle run as a Prefect flow run uses it; off, a bot paces itself alone as before.
    shared_venue_budget: bool = False

    def __post_init__(self) -> None:
        require_booleans(self)
        require(
            self.name == "" or bool(BOT_NAME.match(self.name)),
            "name",
            f"must be 1-24 lower-case letters, digits, '-' or '_' (starting with a letter or "
            f"digit), got {self.name!r}",
        )
        require(
            not isinstance(self.capital, bool)
            and math.isfinite(float(self.capital))
            and float(self.capital) >= 0,
            "capital",
            f"must be a finite amount of the quote currency, 0 or more, got {self.capital!r}",
        )
        require(
            self.name != "" or float(self.capital) == 0,
            "capital",
            "is a named bot's allocation: set bot.name too, or leave bot.capital at 0",
        )

    @property
    def named(self) -> bool:
        """True for a bot of a fleet (``bot.name`` set)."""
        return self.name != ""

    def allocation(self, *, uses_broker: bool, paper_cash: float, quote: str) -> float | None:
        """The cash the bot's own book starts with: ``capital``; in PAPER, ``paper_cash`` when
        none is given; ``None`` for the unnamed bot (the whole account is its money). A named
        bot on an exchange account without one is refused (``ConfigError``): it would size from
        the whole account, every other bot's money included."""
        if not self.named:
            return None
        if self.capital > 0:
            return float(self.capital)
        if uses_broker:
            raise ConfigError(
                f"bot {self.name!r} trades an exchange account other bots may share: set its "
                f"allocation, bot.capital=<amount in {quote}>",
                key="bot.capital",
            )
        return float(paper_cash)
