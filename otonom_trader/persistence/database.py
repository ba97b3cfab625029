"""Opening the trading database, migrating it, and handing out sessions.

SQLite is the default (``$OTONOM_HOME/otonom.db``) with WAL and a busy timeout so a Prefect
worker and a CLI can share it; PostgreSQL through ``postgresql+psycopg://…``. Alembic migrations
run automatically on first use. A database whose schema is *newer* than this code (a revision
this code does not know) is refused rather than silently downgraded or misread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from otonom_trader.home import otonom_home

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseError(RuntimeError):
    """The database cannot be used as it is (newer schema, bad URL, unreachable server)."""


#: Advisory lock key that serialises schema migrations on PostgreSQL (any fixed 64-bit number).
_MIGRATION_LOCK = 0x6F746F6E6F6D0001


def default_sqlite_path() -> Path:
    """``$OTONOM_HOME/otonom.db`` (``~/.otonom_trader/otonom.db`` by default)."""
    return otonom_home() / "otonom.db"


def resolve_url(url_or_path: str | Path | None) -> str:
    """A SQLAlchemy URL from a URL, a file path (SQLite) or ``None`` (the default SQLite)."""
    if url_or_path is None:
        url_or_path = default_sqlite_path()
    text = str(url_or_path)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    return f"sqlite:///{path}"


def describe_url(url: str) -> str:
    """The URL with any password masked, for logs and summaries."""
    return make_url(url).render_as_string(hide_password=True)


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Database:
    """An engine plus a session factory, migrated to the newest schema on construction.

    >>> db = Database("sqlite:///:memory:")  # doctest: +SKIP
    >>> with db.session() as session: ...     # commits on success, rolls back on error
    """

    def __init__(
        self,
        url_or_path: str | Path | None = None,
        *,
        busy_timeout_ms: int = 5_000,
        echo: bool = False,
        migrate: bool = True,
    ) -> None:
        self.url = resolve_url(url_or_path)
        self.engine = self._create_engine(self.url, busy_timeout_ms, echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @staticmethod
    def _create_engine(url: str, busy_timeout_ms: int, echo: bool) -> Engine:
        parsed = make_url(url)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": busy_timeout_ms / 1000}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(url, **kwargs)
        except Exception as exc:  # bad driver name, malformed URL
            raise DatabaseError(f"cannot open database {describe_url(url)}: {exc}") from exc
        if parsed.get_backend_name() == "sqlite":

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                # WAL: readers never block the writer (the UI/CLI can read during a cycle).
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        return engine

    def known_revisions(self) -> set[str]:
        """Every revision the migration scripts of this code know."""
        script = ScriptDirectory.from_config(_alembic_config(self.url))
        return {rev.revision for rev in script.walk_revisions()}

    def current_revisions(self) -> set[str]:
        """The revisions recorded in the database (empty for a new database)."""
        with self.engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())

    def migrate(self) -> None:
        """Upgrade to the newest schema; refuse a schema newer than this code."""
        try:
            current = self.current_revisions()
        except Exception as exc:
            raise DatabaseError(f"cannot reach database {describe_url(self.url)}: {exc}") from exc
        unknown = current - self.known_revisions()
        if unknown:
            raise DatabaseError(
                f"database {describe_url(self.url)} has schema revision(s) "
                f"{', '.join(sorted(unknown))} that this version of otonom_trader does not know "
                "(it was written by a newer version); refusing to use or downgrade it"
            )
        cfg = _alembic_config(self.url)
        with self.engine.begin() as conn:
            # Two processes opening a new database at once must not both create the schema:
            # the first migrates, the second waits for it and then finds nothing to do.
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            elif self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN EXCLUSIVE")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
