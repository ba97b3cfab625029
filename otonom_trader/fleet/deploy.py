"""``fleet deploy``: one Prefect deployment of ``flows/daemon.py:daemon`` per bot of a fleet file.

Each deployment:

* is named after the bot (``otonom-daemon/<bot>``) and tagged ``otonom-fleet``,
  ``fleet:<file>``, ``bot:<bot>`` and ``account:<account id>``;
* passes the bot's Hydra overrides as its only parameter (no resolved config, no secret);
* runs on the strategy's candle schedule (``otonom_trader.serving.schedule``) unless the bot
  names its own, one run at a time (a run still going when the next is due: the new one is
  cancelled, as in ``prefect.yaml``);
* goes to the fleet's work pool, on the bot's work queue when it names one, with a ``pull``
  step that sets the working directory, so a process worker on any host with the project at
  that path finds the entrypoint.

Bots of one account share the Prefect global concurrency limit ``account-<id>`` (one slot) that
every cycle takes (``otonom_trader.accounts.concurrency``); deploy creates those limits up front
so they are visible before the first run. What a deployment should be is hashed into its
``version``: a second deploy of the same file changes nothing and reports ``unchanged``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from otonom_trader.config.errors import ConfigError
from otonom_trader.fleet.file import Bot, Fleet, parse_schedule

FLOW_NAME = "otonom-daemon"
ENTRYPOINT = "flows/daemon.py:daemon"
#: Every deployment a fleet file made carries this tag (and ``fleet:<file name>``).
FLEET_TAG = "otonom-fleet"
#: Deployments read per request.
PAGE = 100
#: The slug of each deployment's one schedule (so an update patches it in place).
SCHEDULE_SLUG = "fleet"

CREATED, UPDATED, UNCHANGED, REMOVED, KEPT = "created", "updated", "unchanged", "removed", "kept"


@dataclass(frozen=True)
class DeploymentPlan:
    """What one bot's deployment should be."""

    bot: Bot
    tags: tuple[str, ...]
    cron: str | None
    interval_s: float | None
    anchor: str | None
    pull_steps: tuple[dict[str, Any], ...]
    pool: str
    fleet: str

    @property
    def version(self) -> str:
        """A hash of everything above: equal versions mean nothing to change."""
        text = json.dumps(
            [
                list(self.bot.overrides),
                self.bot.work_queue,
                list(self.tags),
                self.cron,
                self.interval_s,
                self.anchor,
                list(self.pull_steps),
                self.pool,
                ENTRYPOINT,
            ],
            sort_keys=True,
        )
        return "fleet-" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe_schedule(self) -> str:
        """``cron '1 * * * *' (UTC)`` or ``every 0:05:00``."""
        if self.cron is not None:
            return f"cron '{self.cron}' (UTC)"
        return f"every {timedelta(seconds=self.interval_s or 0)}"


@dataclass(frozen=True)
class DeployAction:
    """One row of ``fleet deploy``'s table."""

    bot: str
    action: str
    account: str
    schedule: str
    work_queue: str


def fleet_tag(fleet_name: str) -> str:
    """The tag of every deployment of the fleet file ``fleet_name``."""
    return f"fleet:{fleet_name}"


def plan_bot(fleet: Fleet, bot: Bot) -> DeploymentPlan:
    """The deployment ``bot`` should have."""
    from otonom_trader.serving.schedule import cycle_schedule, interval_schedule

    cron: str | None
    interval: float | None = None
    anchor: str | None = None
    if bot.schedule is not None:
        cron, seconds = parse_schedule(bot.schedule)
        schedule = interval_schedule(seconds) if seconds is not None else None
    else:
        schedule = cycle_schedule(bot.timeframe)
        cron = schedule.cron
    if cron is None and schedule is not None and schedule.interval is not None:
        interval = schedule.interval.total_seconds()
        anchor = schedule.anchor.isoformat() if schedule.anchor else None
    tags = (FLEET_TAG, fleet_tag(fleet.name), f"bot:{bot.name}", f"account:{bot.account_id}")
    pull = (
        {"prefect.deployments.steps.set_working_directory": {"directory": fleet.working_directory}},
    )
    return DeploymentPlan(bot, tags, cron, interval, anchor, pull, fleet.pool, fleet.name)


def deploy_fleet(fleet: Fleet, confirm_removal: Callable[[list[str]], bool]) -> list[DeployAction]:
    """Create, update or leave each bot's deployment; remove the fleet's deployments of bots
    no longer in the file when ``confirm_removal(names)`` agrees. Returns one row per bot."""
    from prefect.client.orchestration import get_client

    plans = [plan_bot(fleet, bot) for bot in fleet.bots]
    with get_client(sync_client=True) as client:
        existing = _existing(client)
        _refuse_foreign_names(fleet, plans, existing)
        ensure_pool(client, fleet.pool)
        _ensure_limits(fleet)
        flow_id = client.create_flow_from_name(FLOW_NAME)
        schema = _parameter_schema()
        rows = [
            _apply(client, flow_id, schema, plan, existing.get(plan.bot.name)) for plan in plans
        ]
        gone = sorted(
            name
            for name, deployment in existing.items()
            if fleet_tag(fleet.name) in deployment.tags and name not in {b.name for b in fleet.bots}
        )
        if gone:
            remove = confirm_removal(gone)
            for name in gone:
                if remove:
                    client.delete_deployment(existing[name].id)
                rows.append(DeployAction(name, REMOVED if remove else KEPT, "", "", ""))
    return rows


def _existing(client: Any) -> dict[str, Any]:
    """Every deployment of the daemon flow, by name."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import DeploymentSort

    found: dict[str, Any] = {}
    while True:  # page by page: the server returns at most its default limit (200) at once
        page = client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            sort=DeploymentSort.NAME_ASC,  # a stable order across pages
            limit=PAGE,
            offset=len(found),
        )
        found.update((d.name, d) for d in page)
        if len(page) < PAGE:
            return found


def _refuse_foreign_names(
    fleet: Fleet, plans: list[DeploymentPlan], existing: dict[str, Any]
) -> None:
    """A bot named like a deployment this fleet did not make (``paper-hourly`` of
    ``prefect.yaml``, another fleet's bot) would overwrite it: refuse before changing anything."""
    for plan in plans:
        other = existing.get(plan.bot.name)
        if other is not None and fleet_tag(fleet.name) not in other.tags:
            owner = next((t for t in other.tags if t.startswith("fleet:")), "no fleet file")
            raise ConfigError(
                f"deployment {FLOW_NAME}/{plan.bot.name} already exists and belongs to {owner}; "
                "rename the bot",
                f"{fleet.source}: bot {plan.bot.name!r}",
            )


def ensure_pool(client: Any, pool: str) -> None:
    """A process work pool named ``pool`` (created when missing; an existing one is kept)."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        client.read_work_pool(pool)
    except ObjectNotFound:
        # Created meanwhile by another deploy: the same pool.
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))


def _ensure_limits(fleet: Fleet) -> None:
    """Each account's one-slot limit ``account-<id>`` (its bots share it)."""
    from otonom_trader.accounts.concurrency import ensure_account_limit, limit_name

    for account in sorted({bot.account_id for bot in fleet.bots}):
        ensure_account_limit(limit_name(account))


def _parameter_schema() -> dict[str, Any]:
    """The daemon flow's parameter schema (the UI's form, and what the server validates)."""
    from prefect.utilities.callables import parameter_schema

    from otonom_trader.serving.serve import load_flow_module

    return parameter_schema(load_flow_module("daemon").daemon).model_dump_for_openapi()


def _apply(
    client: Any, flow_id: Any, schema: dict[str, Any], plan: DeploymentPlan, current: Any
) -> DeployAction:
    bot = plan.bot
    row = DeployAction(
        bot.name, UNCHANGED, bot.account_id, plan.describe_schedule(), bot.work_queue or "default"
    )
    if current is not None and current.version == plan.version:
        return row
    client.create_deployment(
        flow_id=flow_id,
        name=bot.name,
        version=plan.version,
        description=f"Bot {bot.name} of fleet file {plan.fleet}: one cycle with "
        f"{' '.join(bot.overrides)}",
        schedules=[_schedule(plan)],
        # No per-deployment limit: a run that a killed worker leaves "Running" would hold it,
        # and every next run of the bot would be cancelled (found by the multi-host failover
        # test). A bot's runs are ordered by its account's limit, which is leased and expires.
        parameters={"overrides": list(bot.overrides)},
        parameter_openapi_schema=schema,
        enforce_parameter_schema=True,
        work_pool_name=plan.pool,
        work_queue_name=bot.work_queue,
        tags=list(plan.tags),
        entrypoint=ENTRYPOINT,
        pull_steps=list(plan.pull_steps),
    )
    return DeployAction(
        row.bot, CREATED if current is None else UPDATED, row.account, row.schedule, row.work_queue
    )


def _schedule(plan: DeploymentPlan) -> Any:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    schedule: Any
    if plan.cron is not None:
        schedule = CronSchedule(cron=plan.cron, timezone="UTC")
    else:
        from datetime import datetime

        anchor = datetime.fromisoformat(plan.anchor) if plan.anchor else None
        schedule = IntervalSchedule(
            interval=timedelta(seconds=plan.interval_s or 0), anchor_date=anchor, timezone="UTC"
        )
    return DeploymentScheduleCreate(schedule=schedule, active=True, slug=SCHEDULE_SLUG)
