"""The daemon as a Prefect flow: fetch_signal → guard_check → execute → snapshot → health_check.

    python flows/daemon.py                                   # one PAPER cycle, offline defaults
    python flows/daemon.py mode=shadow guardrails=conservative
    python flows/daemon.py --cfg job                         # print the composed config (secrets
                                                             # stay ${oc.env:...}, unresolved)
    python flows/daemon.py --help

The flow takes ``overrides: list[str]`` (what a deployment passes as JSON) and composes the
configuration itself; no resolved config — and so no secret — is ever a flow parameter. The tasks
only call the step functions of ``otonom_trader.daemon.steps``, the same ones ``run_once()`` uses.
Reads retry with backoff, unless the error is final (a refused key, a missing permission, a bad
configuration: ``retry_unless_final``), so a bad key fails in one attempt; ``execute`` never
retries (orders are journaled with deterministic client ids instead) and the flow itself has no
retries that could re-run a completed execute.
"""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context

from otonom_trader.accounts.concurrency import account_concurrency
from otonom_trader.alerts.hooks import alert_on_flow_crashed, alert_on_flow_failure
from otonom_trader.broker.errors import FinalBrokerError
from otonom_trader.config.compose import config_hash, load_config
from otonom_trader.config.errors import ConfigError, ConfigValueError
from otonom_trader.daemon import steps
from otonom_trader.daemon.context import CycleContext, build_context
from otonom_trader.daemon.cycle import (
    EXIT_ACCOUNT_BUSY,
    SKIPPED,
    CycleSteps,
    record_skipped,
    run_cycle,
)
from otonom_trader.daemon.summary import BookLine, OrderLine, RunSummary

#: Errors that repeat whatever the wait: a refused key or signature, a missing permission (or a
#: forbidden one), a bad configuration. Retrying them only delays the failure alert.
FINAL_ERRORS: tuple[type[BaseException], ...] = (
    FinalBrokerError,
    ConfigError,
    ConfigValueError,
    PermissionError,
)


def retry_unless_final(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed read unless its error is final."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception as exc:  # noqa: BLE001 - an unreadable result: judge what was raised
            error = exc
    return not isinstance(error, FINAL_ERRORS)


# Reads are safe to repeat; backoff 2 s then 10 s covers a brief exchange or network hiccup.
READ_RETRIES = {
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": retry_unless_final,
    "cache_policy": NO_CACHE,
}


@task(name="fetch_signal", **READ_RETRIES)
def fetch_signal_task(ctx: CycleContext, now: datetime) -> steps.SignalBatch:
    """Market data → strategy → sized order intents."""
    return steps.fetch_signal(ctx, now)


@task(name="guard_check", **READ_RETRIES)
def guard_check_task(
    ctx: CycleContext, batch: steps.SignalBatch, now: datetime
) -> steps.GuardStatus:
    """Executing book's equity → guardrails → persisted kill-switch state."""
    return steps.guard_check(ctx, batch, now)


@task(name="execute", retries=0, cache_policy=NO_CACHE)
def execute_task(
    ctx: CycleContext, batch: steps.SignalBatch, run_id: str, summary: RunSummary
) -> list[OrderLine]:
    """Journal, then send each intent to the books the mode names. Never retried."""
    return steps.execute(ctx, batch, run_id, summary)


@task(name="snapshot", **READ_RETRIES)
def snapshot_task(
    ctx: CycleContext, marks: dict[str, Decimal], run_id: str, now: datetime
) -> list[BookLine]:
    """Portfolio snapshot per book (one transaction: a failed attempt leaves nothing behind)."""
    return steps.snapshot(ctx, marks, run_id, now)


@task(
    name="health_check",
    retries=1,
    retry_delay_seconds=2,
    retry_condition_fn=retry_unless_final,
    cache_policy=NO_CACHE,
)
def health_check_task(ctx: CycleContext, run_id: str, now: datetime) -> steps.HealthReport:
    """Heartbeat, gap since the previous run, broker ping, health alerts, alert outbox."""
    return steps.health_check(ctx, run_id, now)


@flow(
    name="otonom-daemon",
    log_prints=True,
    retries=0,
    on_failure=[alert_on_flow_failure],
    on_crashed=[alert_on_flow_crashed],
)
def daemon(overrides: list[str] = []) -> RunSummary:  # noqa: B006 - the deployment parameter
    """One trading cycle with the configuration ``conf/`` + ``overrides``."""
    raw, app = load_config(list(overrides))
    ctx = build_context(app, config_hash(raw))
    run_context = get_run_context()
    flow_run_id = str(run_context.flow_run.id) if getattr(run_context, "flow_run", None) else None
    run_id = flow_run_id or ctx.new_run_id()
    try:
        with account_concurrency(ctx.account.account_id, app.execution.lease_wait_seconds) as slot:
            if not slot.acquired:
                return record_skipped(ctx, run_id, flow_run_id, slot.reason)
            return run_cycle(ctx, run_id, flow_run_id=flow_run_id, cycle_steps=FLOW_STEPS)
    finally:
        ctx.close()


def _publish_shadow_artifact(ctx: CycleContext, run_id: str) -> None:
    if ctx.mode.value == "shadow":
        from otonom_trader.shadow.report import publish_run_artifact

        publish_run_artifact(ctx.db, run_id)


FLOW_STEPS = CycleSteps(
    fetch_signal=fetch_signal_task,
    guard_check=guard_check_task,
    execute=execute_task,
    snapshot=snapshot_task,
    health_check=health_check_task,
    after=_publish_shadow_artifact,
)


# -- command line -------------------------------------------------------------------------------

USAGE = """usage: python flows/daemon.py [--cfg job] [--help] [KEY=VALUE | GROUP=OPTION ...]

Runs one trading cycle as a Prefect flow with the configuration composed from conf/ and the
overrides given (Hydra syntax). Examples:
  python flows/daemon.py                                      PAPER, offline (the defaults)
  python flows/daemon.py mode=shadow guardrails=conservative  SHADOW against the simulated exchange
  python flows/daemon.py mode=shadow broker=binance_testnet broker.base_url=http://127.0.0.1:8765
  python flows/daemon.py --cfg job                            print the composed config and exit

Config groups and their options:
"""


def _groups_help() -> str:
    from otonom_trader.config.compose import CONFIG_DIR

    lines = []
    for group in sorted(p for p in Path(CONFIG_DIR).iterdir() if p.is_dir()):
        options = ", ".join(sorted(f.stem for f in group.glob("*.yaml")))
        lines.append(f"  {group.name:<11} {options}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Parse ``--cfg job`` / ``--help``, validate the config, run the flow, print the summary."""
    from otonom_trader.config.errors import ConfigError

    if "--help" in argv or "-h" in argv:
        print(USAGE + _groups_help())
        return 0
    show_cfg = False
    if "--cfg" in argv:
        index = argv.index("--cfg")
        if argv[index + 1 : index + 2] not in (["job"], ["all"]):
            print("error: --cfg takes 'job' (or 'all')", file=sys.stderr)
            return 2
        show_cfg = True
        argv = argv[:index] + argv[index + 2 :]
    overrides = [a for a in argv if a]
    bad = [a for a in overrides if a.startswith("-")]
    if bad:
        print(f"error: unknown flag {bad[0]} (see --help)", file=sys.stderr)
        return 2
    try:
        raw, _ = load_config(overrides)  # validate before Prefect starts or anything is sent
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if show_cfg:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(raw, resolve=False), end="")
        return 0
    try:
        summary = daemon(overrides)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the flow logged the traceback; one line here
        print(f"cycle failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if summary.status == SKIPPED:
        print(f"skipped: {summary.notes[-1]}", file=sys.stderr)
        return EXIT_ACCOUNT_BUSY
    summary.render()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
