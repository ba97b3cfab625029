"""The one cycle runner: ``TradingDaemon.run_once()`` and the Prefect flow both call ``run_cycle``.

::

    lease the account ─ register it ─ mark dead runs abandoned ─ begin run ─ recover open orders
      ─ reconcile each book with its venue
      → fetch_signal → guard_check → execute → snapshot → health_check ─ finish run ─ release

The lease is taken before anything reads the account's balances and held until the run row is
final, so no second cycle on the same account can overlap any of it; a cycle that cannot get the
lease within ``execution.lease_wait_seconds`` ends without reading or sending anything, as a
``skipped`` run that says who holds the account and since when.

How each of the five steps is *called* is the caller's choice (``CycleSteps``): directly for the
library, as Prefect tasks (with their retries) for the flow. What they do is the same.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, update

from otonom_trader.accounts.lease import AccountBusyError, AccountLease
from otonom_trader.accounts.registry import register_account
from otonom_trader.daemon import steps
from otonom_trader.daemon.context import CycleContext
from otonom_trader.daemon.summary import RunSummary
from otonom_trader.persistence.models import DaemonRun

SKIPPED = "skipped"
#: Exit status of ``flows/daemon.py`` and ``daemon-once`` when another cycle held the account.
EXIT_ACCOUNT_BUSY = 3


@dataclass(frozen=True)
class CycleSteps:
    """The five steps as the caller wants them run (plain functions or Prefect tasks)."""

    fetch_signal: Callable[[CycleContext, datetime], steps.SignalBatch] = steps.fetch_signal
    guard_check: Callable[[CycleContext, steps.SignalBatch, datetime], steps.GuardStatus] = (
        steps.guard_check
    )
    execute: Callable[..., Any] = steps.execute
    snapshot: Callable[[CycleContext, dict[str, Decimal], str, datetime], Any] = steps.snapshot
    health_check: Callable[[CycleContext, str, datetime], steps.HealthReport] = steps.health_check
    #: Called after a successful cycle, still under the lease (the flow publishes an artifact).
    after: Callable[[CycleContext, str], None] | None = None


DIRECT = CycleSteps()


def run_cycle(
    ctx: CycleContext,
    run_id: str | None = None,
    *,
    flow_run_id: str | None = None,
    cycle_steps: CycleSteps = DIRECT,
) -> RunSummary:
    """Run one cycle under the account's lease; return its summary.

    A failed step marks the run failed and re-raises. A busy account gives a ``skipped`` summary
    (nothing read, nothing sent) whose notes say who holds the lease.
    """
    run_id = run_id or ctx.new_run_id()
    lease = AccountLease(
        ctx.db,
        ctx.account.account_id,
        owner=f"run {run_id}",
        wait_seconds=ctx.config.execution.lease_wait_seconds,
        clock=ctx.clock,
    )
    try:
        lease.acquire()
    except AccountBusyError as busy:
        return record_skipped(ctx, run_id, flow_run_id, str(busy))
    try:
        return _run_leased(ctx, run_id, flow_run_id, cycle_steps, lease)
    finally:
        for leg in ctx.legs:
            leg.gate.forget_account()  # the next cycle reads the account afresh
        lease.release()
        steps.deliver_alerts(ctx)


def _run_leased(
    ctx: CycleContext,
    run_id: str,
    flow_run_id: str | None,
    cycle_steps: CycleSteps,
    lease: AccountLease,
) -> RunSummary:
    started = time.perf_counter()
    register_account(ctx.db, ctx.account, bot=ctx.bot, broker_name=ctx.broker_name, now=ctx.clock())
    abandoned = abandon_dead_runs(ctx, run_id)
    summary = steps.begin_run(ctx, run_id, flow_run_id)
    summary.notes.append(
        f"account {ctx.account.account_id}: {ctx.account.describe()}"
        + (f" (waited {lease.waited_s:.1f} s for its lease)" if lease.waited_s >= 0.5 else "")
    )
    if abandoned:
        summary.notes.append(f"{abandoned} run(s) of a dead process marked abandoned")
    try:
        summary.notes.extend(ctx.engine.recover().describe())
        for leg in ctx.legs:  # each reads its venue's account: the cycle's one read of it
            summary.notes.extend(ctx.reconciler.reconcile(leg, ctx.pool).describe())
        now = ctx.clock()
        batch = cycle_steps.fetch_signal(ctx, now)
        summary.signals = steps.describe_signals(batch)
        summary.data_issues = list(batch.issues)
        guard = cycle_steps.guard_check(ctx, batch, now)
        summary.guard_active, summary.guard_reason = guard.active, guard.reason
        summary.orders = cycle_steps.execute(ctx, batch, run_id, summary)
        summary.books = cycle_steps.snapshot(ctx, batch.marks, run_id, ctx.clock())
        health = cycle_steps.health_check(ctx, run_id, ctx.clock())
        summary.heartbeat_gap_s, summary.broker_ping = (
            health.gap_since_previous_s,
            health.broker_ping,
        )
        if cycle_steps.after is not None:
            cycle_steps.after(ctx, run_id)
    except BaseException as exc:
        summary.duration_s = time.perf_counter() - started
        steps.finish_run(
            ctx, summary, "failed", "".join(traceback.format_exception_only(exc)).strip()
        )
        raise
    summary.duration_s = time.perf_counter() - started
    steps.finish_run(ctx, summary, "succeeded")
    return summary


def abandon_dead_runs(ctx: CycleContext, run_id: str) -> int:
    """Mark ``abandoned`` every run of this account still ``running``: under the account's lease
    no other live cycle can be running it, so their process died mid-cycle."""
    with ctx.db.session() as session:
        result = session.execute(
            update(DaemonRun)
            .where(
                DaemonRun.status == "running",
                DaemonRun.run_id != run_id,
                or_(
                    DaemonRun.account_id == ctx.account.account_id,
                    DaemonRun.account_id.is_(None),
                ),
            )
            .values(
                status="abandoned",
                finished_at=ctx.clock(),
                error=f"the process ended mid-cycle; found by run {run_id}",
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def record_skipped(
    ctx: CycleContext, run_id: str, flow_run_id: str | None, reason: str
) -> RunSummary:
    """Record a run that could not lease its account: nothing was read or sent."""
    summary = steps.begin_run(ctx, run_id, flow_run_id, status=SKIPPED)
    summary.notes.append(reason)
    steps.finish_run(ctx, summary, SKIPPED, reason)
    return summary
