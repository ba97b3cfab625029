"""Fixtures shared by the whole suite: an isolated home, per-test databases, PostgreSQL,
started local exchanges (``local_binance`` / ``local_bybit``).

PostgreSQL tests use the server on 127.0.0.1:5432 (trust auth). Each test session creates its
own throw-away database there and drops it afterwards. When no server answers, those tests skip
and say why; they never silently pass.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from otonom_trader.local_exchange import LocalBinanceExchange, LocalBybitExchange
from otonom_trader.persistence import Database

PG_ADMIN_URL = os.environ.get(
    "OTONOM_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ``OTONOM_HOME``: nothing touches ``~/.otonom_trader``."""
    home = tmp_path / "otonom_home"
    monkeypatch.setenv("OTONOM_HOME", str(home))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return home


@pytest.fixture(autouse=True)
def no_log_file_left() -> Iterator[None]:
    """The CLI attaches the activity log file to the root logger, once per process: every test
    detaches it after itself, so the next test's log file is in its own home."""
    yield
    logfiles = sys.modules.get("otonom_trader.operator.logfiles")
    if logfiles is not None:
        logfiles.uninstall_file_logging()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session (dropped at the end)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"otonom_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "skip"
        admin.dispose()
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 did not answer ({type(exc).__name__}): skipped")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database in the test's own directory."""
    db = Database(tmp_path / "trader.db")
    yield db
    db.dispose()


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[Database]:
    """A migrated, empty PostgreSQL database (tables truncated before and after the test:
    other tests of the session may write to the session's database through ``postgres_url``)."""
    from sqlalchemy import text

    db = Database(postgres_url)
    tables = [t for t in _all_tables() if t != "alembic_version"]
    truncate = text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    with db.engine.begin() as conn:
        conn.execute(truncate)
    yield db
    with db.engine.begin() as conn:
        conn.execute(truncate)
    db.dispose()


def _all_tables() -> list[str]:
    from otonom_trader.persistence.registry import metadata

    return [table.name for table in metadata.sorted_tables]


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest) -> Database:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_db")  # type: ignore[no-any-return]
    return request.getfixturevalue("postgres_db")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's real engine against a temporary local server, started once per session
    (it takes ~9 s). Request it from every test that runs a flow."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


#: Key and secret ``local_binance`` / ``local_bybit`` accept (see ``exchange_keys``).
TEST_KEY = "test-key"
TEST_SECRET = "test-secret"
START_BALANCES = {"USDT": Decimal("10000")}
START_PRICES = {"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")}


@pytest.fixture
def exchange_keys() -> tuple[str, str]:
    """``(api_key, api_secret)`` that ``local_binance`` and ``local_bybit`` accept."""
    return TEST_KEY, TEST_SECRET


@pytest.fixture
def local_binance() -> Iterator[LocalBinanceExchange]:
    """A started :class:`LocalBinanceExchange` on a free port, stopped after the test
    (10 000 USDT; BTC/USDT 50 000, ETH/USDT 3 000)."""
    with LocalBinanceExchange(
        api_key=TEST_KEY,
        api_secret=TEST_SECRET,
        balances=dict(START_BALANCES),
        prices=dict(START_PRICES),
    ) as exchange:
        yield exchange


@pytest.fixture
def local_bybit() -> Iterator[LocalBybitExchange]:
    """A started :class:`LocalBybitExchange` on a free port, stopped after the test
    (same balances and prices as ``local_binance``)."""
    with LocalBybitExchange(
        api_key=TEST_KEY,
        api_secret=TEST_SECRET,
        balances=dict(START_BALANCES),
        prices=dict(START_PRICES),
    ) as exchange:
        yield exchange
