"""How several bots share one exchange account: one account book, one attribution book per bot.

Like NautilusTrader (one venue account, fills tagged with the strategy that sent the order, a
position per strategy) and Hummingbot (each strategy accounts for its own orders on a shared
exchange account), the *account* stays the unit the exchange knows, and each *bot* keeps its own
ledger of the fills of the orders it sent:

* the **account book** (the account id, e.g. ``binance-t-5d1c0e9a7b``) books every fill of every
  bot; reconciliation keeps it equal to the exchange, exactly as for a single bot. Its equity is
  the account's total equity, which the account-level guardrail watches;
* each **bot book** (``bot:<name>``) books the same fills of that bot's orders only. It starts
  with the bot's ``capital`` as cash, so its equity is the bot's allocation plus what its own
  trades made or lost, its positions are what the bot bought and not yet sold, and its fills carry
  the bot's realized PnL and fees. A bot sizes its orders from it, sells only from it, and its own
  guardrails (daily loss, drawdown, consecutive losses) evaluate it;
* a named bot's **paper book** (``paper@<name>``) is its PAPER book or its SHADOW paper leg: every
  bot simulates its own money.

An unnamed bot (``bot.name`` empty) has no bot book: the account book is its book, as it always
was. Every order, fill, snapshot, kill-switch row, shadow pair and alert row also carries the
``bot`` and ``account_id`` columns, so views filter by them without parsing book names.
"""

from __future__ import annotations

from dataclasses import dataclass

from otonom_trader.accounts.identity import PAPER_ACCOUNT_ID, shadow_paper_book

BOT_BOOK_PREFIX = "bot:"
BOT_PAPER_PREFIX = "paper@"


def bot_book(name: str) -> str:
    """The attribution book of bot ``name`` on its exchange account (``bot:<name>``)."""
    return f"{BOT_BOOK_PREFIX}{name}"


def bot_paper_book(name: str) -> str:
    """The paper book of bot ``name`` (its PAPER book, or its SHADOW paper leg)."""
    return f"{BOT_PAPER_PREFIX}{name}"


def bot_of_book(book: str) -> str | None:
    """The bot a book belongs to (``bot:a`` and ``paper@a`` → ``a``), ``None`` for an account's
    or an unnamed bot's book."""
    for prefix in (BOT_BOOK_PREFIX, BOT_PAPER_PREFIX):
        if book.startswith(prefix):
            return book[len(prefix) :]
    return None


@dataclass(frozen=True)
class BotBooks:
    """The books one cycle of one bot uses.

    * ``paper``: the paper leg's book (PAPER, SHADOW, LIVE with a paper book), else ``None``;
    * ``account``: the exchange account's book (``None`` in PAPER);
    * ``attribution``: the named bot's own book on the account (``None`` when unnamed or PAPER);
    * ``guarded``: the book the bot's own kill-switch is keyed by and its guardrails evaluate;
    * ``sizing``: the book whose equity sizes the bot's orders and whose positions it sells.
    """

    bot: str | None
    account_id: str
    paper: str | None
    account: str | None
    attribution: str | None

    @classmethod
    def plan(cls, bot: str, account_id: str, *, uses_broker: bool, paper: bool) -> BotBooks:
        """The books of bot ``bot`` (``""`` = unnamed) on ``account_id``."""
        named = bot or None
        if not uses_broker:
            book = bot_paper_book(bot) if named else PAPER_ACCOUNT_ID
            return cls(named, account_id, book, None, None)
        paper_book = None
        if paper:
            paper_book = bot_paper_book(bot) if named else shadow_paper_book(account_id)
        return cls(named, account_id, paper_book, account_id, bot_book(bot) if named else None)

    @property
    def guarded(self) -> str:
        """The bot's own kill-switch scope: its attribution book, else the executing book."""
        if self.attribution is not None:
            return self.attribution
        return self.account or self.paper or PAPER_ACCOUNT_ID

    @property
    def sizing(self) -> str:
        """The book the bot sizes from and sells from (the same as ``guarded``)."""
        return self.guarded

    @property
    def shares_account(self) -> bool:
        """True when the bot trades an exchange account other bots may share: the account's own
        guardrail then halts it too."""
        return self.attribution is not None
