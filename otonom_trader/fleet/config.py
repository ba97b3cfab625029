"""``BotConfig``: which bot of a fleet a cycle runs as.

A bot is a named combination of strategy, account and mode. ``name`` empty (the default) is the
single unnamed bot of a one-bot database: books, switches and reports are named as they always
were. A fleet file gives each bot ``bot.name=<name>`` among its overrides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from otonom_trader.config.errors import require, require_booleans

#: Lower-case letters, digits, ``-`` and ``_``; starts with a letter or digit; at most 24 chars
#: (it becomes part of book names and Prefect deployment names).
BOT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")


@dataclass
class BotConfig:
    """The bot a cycle runs as (``bot.name``; empty = the unnamed single bot)."""

    name: str = ""
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
