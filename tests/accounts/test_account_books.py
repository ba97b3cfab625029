"""Books belong to accounts: switching venues or labels gives separate books, no value of one
account reaches another's guardrails or reports, a real account is valued at its venue's prices,
and the pre-accounts ``broker`` book is carried over to the account that traded it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from otonom_trader.daemon import ExecutionMode, TradingDaemon
from otonom_trader.local_exchange import LocalBinanceExchange
from otonom_trader.persistence import Database
from otonom_trader.persistence.account_models import AccountRecord
from otonom_trader.persistence.guardrail_models import KillSwitchStateRecord
from otonom_trader.persistence.models import BookAccount, DaemonRun, PortfolioSnapshot
from otonom_trader.shadow.report import build_report, shadow_books
from otonom_trader.testkit.clock import ManualClock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KEY, SECRET = "test-key", "test-secret"


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", SECRET)


@pytest.fixture
def small_account() -> Iterator[LocalBinanceExchange]:
    """A second Binance account holding 4,000 USDT (60 % below the first one's 10,000)."""
    with LocalBinanceExchange(
        api_key=KEY,
        api_secret=SECRET,
        balances={"USDT": Decimal("4000")},
        prices={"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")},
    ) as exchange:
        yield exchange


def _shadow(db: Path, url: str, *extra: str, data: str | None = None) -> TradingDaemon:
    data_overrides = (
        ["data=exchange", f"data.exchange_base_url={url}"] if data is None else [f"data={data}"]
    )
    return TradingDaemon(
        db_path=db,
        strategy_path=FIXTURES / "always_buy_v1.0.yaml",
        mode=ExecutionMode.SHADOW,
        overrides=[
            "alerts.enabled=false",
            "broker=binance_testnet",
            f"broker.base_url={url}",
            *data_overrides,
            *extra,
        ],
    )


def test_switching_venues_gives_separate_books_and_nothing_crosses_over(
    tmp_path: Path,
    keys: None,
    local_binance: LocalBinanceExchange,
    small_account: LocalBinanceExchange,
) -> None:
    db = tmp_path / "trader.db"
    first = _shadow(db, local_binance.base_url)
    first_summary = first.run_once()
    first_account = first.context.account
    first.close()

    # Act: the same setup pointed at another account with 60 % less money
    second = _shadow(db, small_account.base_url)
    second_summary = second.run_once()
    second_account = second.context.account
    second.close()

    # Assert: two books; the second account's drawdown guard never saw the first one's peak
    assert first_account.book != second_account.book
    assert first_summary.fills and second_summary.fills
    assert second_summary.guard_active is False, second_summary.guard_reason
    database = Database(db)
    with database.session() as session:
        states = {r.book: r for r in session.scalars(select(KillSwitchStateRecord))}
        peaks = {
            book: max(
                s.peak_equity
                for s in session.scalars(
                    select(PortfolioSnapshot).where(PortfolioSnapshot.book == book)
                )
            )
            for book in (first_account.book, second_account.book)
        }
        accounts = {r.account_id for r in session.scalars(select(AccountRecord))}
    assert set(states) >= {first_account.book, second_account.book}
    assert not states[second_account.book].active
    assert peaks[first_account.book] > Decimal("9000") and peaks[second_account.book] < Decimal(
        "4100"
    )
    assert accounts == {first_account.account_id, second_account.account_id}
    # Reports compare one account's books: the second account's pairs only.
    report = build_report(
        database, since=None, until=None, books=shadow_books(database, second_account.account_id)
    )
    broker_ids = {o.client_order_id for o in second_summary.orders}
    assert report.pair_count > 0
    assert all(p.broker.client_order_id in broker_ids for p in report.pairs)
    assert report.broker.equity_start is None or report.broker.equity_start < Decimal("4100")
    database.dispose()


def test_a_new_label_on_the_same_venue_is_a_new_book(
    tmp_path: Path, keys: None, local_binance: LocalBinanceExchange
) -> None:
    db = tmp_path / "trader.db"
    main = _shadow(db, local_binance.base_url)
    other = _shadow(db, local_binance.base_url, "broker.label=grid-bot")

    assert main.context.account.book != other.context.account.book
    main.close()
    other.close()


def test_a_real_account_is_valued_at_its_venues_prices_never_at_synthetic_ones(
    tmp_path: Path, keys: None, local_binance: LocalBinanceExchange
) -> None:
    daemon = _shadow(tmp_path / "trader.db", local_binance.base_url, data="synthetic")
    summary = daemon.run_once()
    book = daemon.context.account.book
    daemon.close()

    database = Database(tmp_path / "trader.db")
    with database.session() as session:
        snap = session.scalars(
            select(PortfolioSnapshot).where(PortfolioSnapshot.book == book)
        ).one()
    database.dispose()
    import json

    marks = {p["symbol"]: Decimal(p["mark_price"]) for p in json.loads(snap.positions_json)}
    assert summary.fills  # it bought on the exchange
    # The exchange's own prices (50,000 and 3,000), not the synthetic candles' closes.
    assert marks == {"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")}


def _legacy_database(tmp_path: Path) -> Path:
    """A database from before accounts: a 'broker' book (peak 10,039) whose last SHADOW run
    traded the simulated exchange."""
    db_path = tmp_path / "trader.db"
    database = Database(db_path)
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    with database.session() as session:
        session.add(
            BookAccount(
                book="broker", quote_asset="USDT", cash=Decimal(7000), initial_cash=Decimal(0)
            )
        )
        session.add(
            PortfolioSnapshot(
                book="broker",
                run_id="old",
                taken_at=t0,
                equity=Decimal("10039"),
                cash=Decimal(7000),
                peak_equity=Decimal("10039"),
            )
        )
        session.add(
            DaemonRun(
                run_id="old",
                started_at=t0,
                status="succeeded",
                mode="shadow",
                broker="sim (simulated exchange)",
                data_source="synthetic",
                config_hash="x",
                strategy_name="baseline",
                strategy_version="1.0",
            )
        )
    database.dispose()
    return db_path


def test_the_legacy_broker_book_is_carried_over_to_the_account_that_traded_it(
    tmp_path: Path,
) -> None:
    # Arrange: a database from before accounts: a 'broker' book traded by the simulated exchange
    db_path = _legacy_database(tmp_path)

    # Act: the first SHADOW cycle on that venue
    daemon = TradingDaemon(
        db_path=db_path,
        mode=ExecutionMode.SHADOW,
        overrides=["alerts.enabled=false"],
        clock=ManualClock(datetime(2026, 6, 2, 12, 0, 30, tzinfo=UTC)),
    )
    daemon.run_once()
    book = daemon.context.account.book
    daemon.close()

    # Assert: the old book's history now is the account's; 'broker' is gone; adoption recorded
    database = Database(db_path)
    with database.session() as session:
        peak = session.scalars(
            select(PortfolioSnapshot.peak_equity).where(PortfolioSnapshot.book == book)
        ).first()
        legacy_left = session.get(BookAccount, "broker")
        account = session.get(AccountRecord, daemon.context.account.account_id)
        assert account is not None and account.adopted_from == "broker"
    database.dispose()
    assert peak == Decimal("10039") and legacy_left is None


def test_the_legacy_book_is_not_adopted_by_another_venue(
    tmp_path: Path, keys: None, local_binance: LocalBinanceExchange
) -> None:
    db_path = _legacy_database(tmp_path)

    daemon = _shadow(db_path, local_binance.base_url)
    daemon.run_once()
    daemon.close()

    database = Database(db_path)
    with database.session() as session:
        assert session.get(BookAccount, "broker") is not None  # still there, readable
    database.dispose()
