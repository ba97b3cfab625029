"""Opening the trading database, migrating it, and handing out sessions.

SQLite is the default (``$OTONOM_HOME/otonom.db``) with WAL and a busy timeout so a Prefect
worker and a CLI can share it; PostgreSQL through ``postgresql+psycopg://…``. Alembic migrations
run automatically on first use. A database whose schema is *newer* than this code (a revision
this code does not know) is refused rather than silently downgraded or misread.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from otonom_trader.home import otonom_home

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported where migrations are read or run, not with this module: importing the
# package (every command does) should not pay for it.

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
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL: say so without echoing it
        return "<malformed database URL>"


def one_line(exc: BaseException) -> str:
    """A driver error on one line: SQLAlchemy appends ``[SQL: …]`` and a "Background on this
    error" link on lines of their own; the driver's own message is the first line."""
    inner = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return lines[0] if lines else type(inner).__name__


def preflight(url_or_path: str | Path | None) -> None:
    """Refuse a database this code cannot use, before anything is created or written.

    For SQLite: a path whose directory does not exist (a user's path is never created beyond
    the file itself; only the default ``$OTONOM_HOME`` is), a directory, a read-only file, a
    file that is not SQLite, a schema written by a newer version, and a database at the newest
    revision that lacks a table or a column (damaged). The file is opened ``immutable``: no
    journal, no lock file, nothing written. Other databases are checked when connected.
    """
    if str(url_or_path or "").startswith("file:"):
        raise DatabaseError(
            f"SQLite URI file names are not supported ({url_or_path!s}); give a file path "
            "or a sqlite:/// URL"
        )
    url = resolve_url(url_or_path)
    try:
        parsed = make_url(url)
        parsed.get_dialect()  # loads the dialect and its driver module; connects to nothing
    except Exception as exc:  # noqa: BLE001 - ArgumentError, NoSuchModuleError, a bad port
        raise DatabaseError(
            f"{describe_url(url)}: not a usable database URL ({one_line(exc)}); expected a "
            "SQLite path or dialect+driver://host/database (postgresql+psycopg://…)"
        ) from None
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return
    if database.startswith("file:"):
        raise DatabaseError(
            f"SQLite URI file names are not supported ({database}); give a file path"
        )
    path = Path(database)
    if (
        url_or_path is None
    ):  # the default path: $OTONOM_HOME may be created, so it must be creatable
        existing = next(p for p in (path, *path.parents) if p.exists())
        if existing != path and not existing.is_dir():
            raise DatabaseError(
                f"OTONOM_HOME ({path.parent}): {existing} is a file, not a directory"
            )
    if not path.exists():
        if url_or_path is not None and not path.parent.is_dir():
            raise DatabaseError(
                f"{path}: directory {path.parent} does not exist (it is not created for you)"
            )
        return
    if not path.is_file():
        raise DatabaseError(f"{path}: expected a SQLite database file, found a directory")
    if not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseError(f"{path}: the database file must be readable and writable")
    signature = _file_signature(path)
    if _SCHEMA_CHECKED.get(path) == signature:
        return  # checked by this process, and neither the file nor its log changed since
    _check_sqlite_schema(path)
    _SCHEMA_CHECKED[path] = signature


#: SQLite files whose schema this process checked, with their signature at the time: a cycle
#: checks its database when its input is validated, when it opens it and when it reads the
#: summary back; the second and third look again only if the file or its log changed.
_SCHEMA_CHECKED: dict[Path, tuple[tuple[int, int, int], ...]] = {}


def _file_signature(path: Path) -> tuple[tuple[int, int, int], ...]:
    """(inode, size, mtime in ns) of the database file and of its write-ahead log, if any."""
    found = []
    for candidate in (path, path.with_name(path.name + "-wal")):
        try:
            stat = candidate.stat()
        except FileNotFoundError:
            continue
        found.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def _check_sqlite_schema(path: Path) -> None:
    # Without a write-ahead log every committed page is in the file: read it ``immutable`` (no
    # lock, no -wal/-shm created). With one (a process has it open, or one was killed), commits
    # may live only in the log: read through SQLite's locks, read-only, like any reader.
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    uri = f"file:{quote(str(path))}?{mode}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
        try:
            tables = {
                row[0]: row[1]
                for row in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table'")
            }
            revisions = (
                {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
                if "alembic_version" in tables
                else set()
            )
            columns = {
                name: {row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')}
                for name in tables
            }
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return  # another process is writing it: opening it waits its turn and checks again
        raise DatabaseError(f"{path}: not a usable SQLite database ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: not a usable SQLite database ({exc})") from None
    if not tables:
        return  # a new, empty database: migrations create the schema
    if not revisions:
        raise DatabaseError(
            f"{path}: has tables but no schema revision (alembic_version): not an otonom_trader "
            "database, or a damaged one"
        )
    known, heads = _script_revisions(str(MIGRATIONS_DIR))
    unknown = revisions - known
    if unknown:
        raise DatabaseError(_newer_schema_message(str(path), unknown))
    if revisions != heads:
        return  # an older schema: migrations bring it up to date
    from otonom_trader.persistence.registry import metadata

    for table in metadata.sorted_tables:
        if table.name not in columns:
            raise DatabaseError(
                f"{path}: table {table.name!r} is missing: the database is damaged "
                "(restore it from a backup)"
            )
        missing = [c.name for c in table.columns if c.name not in columns[table.name]]
        if missing:
            raise DatabaseError(
                f"{path}: table {table.name!r} lacks column {missing[0]!r}: the database is "
                "damaged (restore it from a backup)"
            )


def _newer_schema_message(where: str, unknown: set[str]) -> str:
    return (
        f"database {where} has schema revision(s) {', '.join(sorted(unknown))} that this "
        "version of otonom_trader does not know (it was written by a newer version); refusing "
        "to use or downgrade it"
    )


@functools.lru_cache(maxsize=4)
def _script_revisions(migrations_dir: str) -> tuple[frozenset[str], frozenset[str]]:
    """Every revision the migration scripts know, and their heads: read once per process.

    Read from the scripts' ``revision`` and ``down_revision`` lines, so that opening an
    up-to-date database (every cycle) does not import Alembic and each script (about 0.2 s);
    a script those lines do not describe is read by Alembic instead. A test holds this equal to
    Alembic's own reading."""
    parsed = _declared_revisions(Path(migrations_dir) / "versions")
    if parsed is not None:
        return parsed
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("sqlite://", migrations_dir))
    return frozenset(rev.revision for rev in script.walk_revisions()), frozenset(script.get_heads())


_REVISION_LINE = re.compile(r'^revision: str = "([^"]+)"$', re.MULTILINE)
_DOWN_REVISION_LINE = re.compile(r"^down_revision: [^=]+= (.+)$", re.MULTILINE)


def _declared_revisions(versions: Path) -> tuple[frozenset[str], frozenset[str]] | None:
    """``(revisions, heads)`` from each script's declaration lines, or ``None`` when a script
    does not declare them in the form the scripts here use."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted(versions.glob("*.py")):
        text = script.read_text()
        revision = _REVISION_LINE.findall(text)
        down = _DOWN_REVISION_LINE.findall(text)
        if len(revision) != 1 or len(down) != 1:
            return None
        try:
            value = ast.literal_eval(down[0].strip())
        except (ValueError, SyntaxError):
            return None
        if isinstance(value, str):
            parents.add(value)
        elif isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
            parents.update(value)
        elif value is not None:
            return None
        revisions.add(revision[0])
    if not revisions:
        return None
    return frozenset(revisions), frozenset(revisions - parents)


def _alembic_config(url: str, migrations_dir: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir or str(MIGRATIONS_DIR))
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
        preflight(url_or_path)
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
            raise DatabaseError(
                f"cannot open database {describe_url(url)}: {one_line(exc)}"
            ) from exc
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
        return set(_script_revisions(str(MIGRATIONS_DIR))[0])

    def current_revisions(self) -> set[str]:
        """The revisions recorded in the database (empty for a new database)."""
        # Alembic's own table, read directly: Alembic is imported only when there is a
        # migration to run.
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return set()
            return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}

    def applied_revisions(self) -> set[str]:
        """Every revision applied to the database: the recorded ones and all their ancestors
        (a merge revision such as ``0009_bots`` records itself, not the branches it joined)."""
        current = self.current_revisions()
        if not current:
            return set()
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(_alembic_config(self.url))
        return {rev.revision for rev in script.iterate_revisions(tuple(current), "base")}

    def migrate(self) -> None:
        """Upgrade to the newest schema; refuse a schema newer than this code."""
        try:
            current = self.current_revisions()
        except Exception as exc:
            raise DatabaseError(
                f"cannot reach database {describe_url(self.url)}: {one_line(exc)}"
            ) from exc
        known, heads = _script_revisions(str(MIGRATIONS_DIR))
        unknown = current - known
        if unknown:
            raise DatabaseError(_newer_schema_message(describe_url(self.url), unknown))
        if current == heads:
            return  # up to date: nothing to run (the usual case, every cycle)
        from alembic import command

        cfg = _alembic_config(self.url)
        try:
            with self.engine.begin() as conn:
                # Two processes opening a new database at once must not both create the schema:
                # the first migrates, the second waits for it and then finds nothing to do.
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
                elif self.dialect == "sqlite":
                    conn.exec_driver_sql("BEGIN EXCLUSIVE")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"cannot migrate database {describe_url(self.url)}: {one_line(exc)}"
            ) from exc

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
