"""``fleet status``: each bot's deployment and last flow run (Prefect's API) beside its account,
last recorded cycle, equity and guard (the trading database).

A bot's equity is the latest snapshot of its own book, its guard its own kill-switch or its
account's (``bot_book_numbers``). The last cycle is the bot's own: the newest ``daemon_runs`` row
written by one of its deployment's flow runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from otonom_trader.fleet.deploy import FLOW_NAME, plan_bot
from otonom_trader.fleet.file import Bot, Fleet

#: Flow runs of a bot whose ``daemon_runs`` rows are looked for (the newest first).
RECENT_RUNS = 20


@dataclass
class BookNumbers:
    """Equity and guard of the book a bot trades."""

    book: str
    equity: Decimal | None = None
    equity_at: datetime | None = None
    guard: str = "ok"


@dataclass
class BotStatus:
    """One row of ``fleet status``."""

    bot: str
    deployment: str
    schedule: str
    work_queue: str
    account: str
    flow_run: str = "-"
    flow_run_state: str = "-"
    flow_run_at: datetime | None = None
    last_cycle: str = "-"
    last_cycle_at: datetime | None = None
    equity: Decimal | None = None
    guard: str = "-"

    def as_json(self) -> dict[str, Any]:
        """Plain JSON values (times ISO 8601, equity a string: exact)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
            elif isinstance(value, Decimal):
                out[key] = str(value)
        return out


def fleet_status(fleet: Fleet) -> list[BotStatus]:
    """One ``BotStatus`` per bot of the fleet file."""
    from prefect.client.orchestration import get_client

    rows: list[BotStatus] = []
    with get_client(sync_client=True) as client:
        for bot in fleet.bots:
            plan = plan_bot(fleet, bot)
            row = BotStatus(
                bot=bot.name,
                deployment="missing",
                schedule=plan.describe_schedule().removesuffix(" (UTC)"),
                work_queue=bot.work_queue or "default",
                account=bot.account_id,
            )
            flow_run_ids = _read_deployment(client, bot, row)
            _read_database(bot, row, flow_run_ids)
            rows.append(row)
    return rows


def _read_deployment(client: Any, bot: Bot, row: BotStatus) -> list[str]:
    """Fill the Prefect columns; return the ids of the deployment's recent runs (newest first)."""
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterStartTime,
    )
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.exceptions import ObjectNotFound

    try:
        deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{bot.name}")
    except ObjectNotFound:
        return []
    row.deployment = "paused" if deployment.paused else "deployed"
    if deployment.schedules:
        schedule = deployment.schedules[0].schedule
        cron = getattr(schedule, "cron", None)
        row.schedule = f"cron '{cron}'" if cron else f"every {schedule.interval}"
    row.work_queue = deployment.work_queue_name or row.work_queue
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False)),
        sort=FlowRunSort.START_TIME_DESC,
        limit=RECENT_RUNS,
    )
    if runs:
        last = runs[0]
        row.flow_run = last.name
        row.flow_run_state = last.state.name if last.state else "-"
        row.flow_run_at = last.start_time
    return [str(run.id) for run in runs]


def _read_database(bot: Bot, row: BotStatus, flow_run_ids: list[str]) -> None:
    """Fill the trading-database columns (left ``-`` when the database has nothing yet)."""
    from sqlalchemy import select
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from otonom_trader.persistence.database import Database, resolve_url
    from otonom_trader.persistence.models import DaemonRun

    url = make_url(resolve_url(bot.db_url))
    if url.get_backend_name() == "sqlite" and not Path(str(url.database)).is_file():
        return  # no cycle has run against it yet: nothing to read, nothing to create
    db = Database(bot.db_url, migrate=False)
    try:
        with db.session() as session:
            if flow_run_ids:
                run = session.scalars(
                    select(DaemonRun)
                    .where(DaemonRun.flow_run_id.in_(flow_run_ids))
                    .order_by(DaemonRun.started_at.desc())
                    .limit(1)
                ).first()
                if run is not None:
                    row.last_cycle, row.last_cycle_at = run.status, run.started_at
            numbers = bot_book_numbers(session, bot)
        row.equity, row.guard = numbers.equity, numbers.guard
    except SQLAlchemyError:
        row.guard = "database not migrated yet"
    finally:
        db.dispose()


def bot_book_numbers(session: Any, bot: Bot) -> BookNumbers:
    """Equity and guard of ``bot``: its own book (``paper@<name>`` for a PAPER bot, else its
    attribution book ``bot:<name>`` on the account, see ``otonom_trader.fleet.books``), and its
    guard: its own kill-switch, or its account's, which halts every bot on the account."""
    from sqlalchemy import select

    from otonom_trader.accounts.identity import PAPER_ACCOUNT_ID
    from otonom_trader.fleet.books import bot_book, bot_paper_book
    from otonom_trader.persistence.guardrail_models import KillSwitchStateRecord
    from otonom_trader.persistence.models import PortfolioSnapshot

    paper = bot.account_id == PAPER_ACCOUNT_ID
    numbers = BookNumbers(bot_paper_book(bot.name) if paper else bot_book(bot.name))
    snapshot = session.scalars(
        select(PortfolioSnapshot)
        .where(PortfolioSnapshot.book == numbers.book)
        .order_by(PortfolioSnapshot.taken_at.desc(), PortfolioSnapshot.id.desc())
        .limit(1)
    ).first()
    if snapshot is not None:
        numbers.equity, numbers.equity_at = snapshot.equity, snapshot.taken_at
    switches = (
        [("bot", numbers.book)] if paper else [("bot", numbers.book), ("account", bot.account_id)]
    )
    for level, book in switches:
        switch = session.get(KillSwitchStateRecord, book)
        if switch is not None and switch.active:
            numbers.guard = f"halted ({level}): {switch.reason or 'no reason recorded'}"
            break
    return numbers
