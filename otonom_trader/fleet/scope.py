"""``--bot`` / ``--account`` for the operator's commands: which books a filter selects.

Every command (``status``, ``trades``, ``orders``, ``profit``, ``equity``, ``kill-switch``,
``shadow-report``) shows every book by default; ``--bot NAME`` narrows to the books of one named
bot (its own book ``bot:<name>`` and its paper book ``paper@<name>``), ``--account ID`` to the books
of one account (its book, the paper book that shadows it, and the books of the bots trading it).
An unknown bot or account is refused by name, listing the known ones (``ConfigError``: one line,
exit status 2). The bots a database knows are read from its rows' ``bot`` columns and its books'
names, never from a configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from otonom_trader.accounts.identity import PAPER_ACCOUNT_ID, shadow_paper_book
from otonom_trader.config.errors import ConfigError
from otonom_trader.fleet.books import bot_of_book
from otonom_trader.persistence.account_models import AccountRecord
from otonom_trader.persistence.database import Database
from otonom_trader.persistence.guardrail_models import KillSwitchStateRecord
from otonom_trader.persistence.models import BookAccount, DaemonRun


@dataclass(frozen=True)
class Fleet:
    """What a database knows of its bots: each named bot's account (``None`` when no row says
    it yet), every account id, and every book."""

    bots: dict[str, str | None]
    accounts: frozenset[str]
    books: tuple[str, ...]

    @classmethod
    def read(cls, db: Database) -> Fleet:
        """Read the bots, accounts and books of ``db`` (a few indexed, small queries)."""
        with db.session() as session:
            books = set(session.scalars(select(BookAccount.book)))
            books |= set(session.scalars(select(KillSwitchStateRecord.book)))
            books |= set(session.scalars(select(AccountRecord.book)))
            accounts = frozenset(session.scalars(select(AccountRecord.account_id)))
            pairs = set(
                session.execute(
                    select(DaemonRun.bot, DaemonRun.account_id)
                    .where(DaemonRun.bot.isnot(None))
                    .distinct()
                ).all()
            )
            pairs |= set(
                session.execute(
                    select(KillSwitchStateRecord.bot, KillSwitchStateRecord.account_id).where(
                        KillSwitchStateRecord.bot.isnot(None)
                    )
                ).all()
            )
        books.discard("*")
        bots: dict[str, str | None] = {}
        for book in books:
            named = bot_of_book(book)
            if named is not None:
                bots.setdefault(named, None)
        for bot, account in sorted(pairs, key=lambda p: (str(p[0]), str(p[1]))):
            if bot is not None:
                bots[bot] = account or bots.get(bot)
        return cls(bots, accounts, tuple(sorted(books)))

    @property
    def several_bots(self) -> bool:
        """True when more than one named bot wrote to this database (views then name them)."""
        return len(self.bots) > 1

    def require_bot(self, bot: str) -> str:
        """``bot`` if the database knows it, else a ``ConfigError`` naming the known bots."""
        if bot not in self.bots:
            known = ", ".join(sorted(self.bots)) or "none: no named bot has run here"
            raise ConfigError(f"no bot {bot!r} in this database (bots: {known})", key="--bot")
        return bot

    def require_account(self, account: str) -> str:
        """``account`` if the database knows it, else a ``ConfigError`` naming the known ones."""
        if account not in self.accounts:
            known = ", ".join(sorted(self.accounts)) or "none yet"
            raise ConfigError(
                f"no account {account!r} in this database (accounts: {known})", key="--account"
            )
        return account

    def books_of_bot(self, bot: str) -> list[str]:
        """The books of named bot ``bot``: its own book on its account and its paper book."""
        self.require_bot(bot)
        return [book for book in self.books if bot_of_book(book) == bot]

    def books_of_account(self, account: str) -> list[str]:
        """The books of ``account``: its own, the paper book shadowing it, its bots' books."""
        self.require_account(account)
        own = {account} if account == PAPER_ACCOUNT_ID else {account, shadow_paper_book(account)}
        bots = {bot for bot, where in self.bots.items() if where == account}
        return [b for b in self.books if b in own or bot_of_book(b) in bots]

    def select(
        self, *, book: str | None = None, bot: str | None = None, account: str | None = None
    ) -> list[str]:
        """The books the filters select (all of them without a filter); each filter given is
        checked first, so an unknown name is refused even when another filter would match."""
        chosen = list(self.books)
        if bot is not None:
            chosen = [b for b in chosen if b in self.books_of_bot(bot)]
        if account is not None:
            chosen = [b for b in chosen if b in self.books_of_account(account)]
        if book is not None:
            chosen = [b for b in chosen if b == book]
        return chosen
