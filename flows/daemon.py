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
from pathlib import Path

from otonom_trader.serving.environment import apply_prefect_defaults

# Analytics off and a patient temporary server, unless the user set them: before Prefect's import.
apply_prefect_defaults()

# -- command line (before Prefect's import, see check_argv) --------------------------------------

USAGE = """usage: python flows/daemon.py [--serve] [--cfg job] [--help] [KEY=VALUE ...]

Runs one trading cycle as a Prefect flow with the configuration composed from conf/ and the
overrides given (Hydra syntax); with --serve, runs a cycle shortly after every candle close of
the strategy's timeframe, with the watchdog beside it, until stopped (otonom-trader serve).
Examples:
  python flows/daemon.py                                      PAPER, offline (the defaults)
  python flows/daemon.py --serve mode=shadow                  SHADOW, every candle, until stopped
  python flows/daemon.py mode=shadow guardrails=conservative  SHADOW against the simulated exchange
  python flows/daemon.py mode=shadow broker=binance_testnet broker.base_url=http://127.0.0.1:8765
  python flows/daemon.py --cfg job                            print the composed config and exit

Config groups and their options:
"""


def _groups_help() -> str:
    from otonom_trader.config.compose import CONFIG_DIR
    from otonom_trader.fleet.file import FLEET_GROUP

    lines = []
    # conf/fleet/ holds fleet files (otonom-trader fleet deploy), not options of a cycle.
    groups = (p for p in Path(CONFIG_DIR).iterdir() if p.is_dir() and p.name != FLEET_GROUP)
    for group in sorted(groups):
        options = ", ".join(sorted(f.stem for f in group.glob("*.yaml")))
        lines.append(f"  {group.name:<11} {options}")
    return "\n".join(lines)


#: The summaries of the flow runs this process ran, by run id: ``main`` prints the one it ran
#: instead of reading it back from the database.
_FINISHED: dict[str, Any] = {}

#: The configuration ``check_argv`` validated, by its overrides: the flow run that follows it in
#: the same process (``python flows/daemon.py``) takes it instead of composing and checking it
#: all again (a deployment's run, which ``check_argv`` never saw, validates for itself).
_VALIDATED: dict[tuple[str, ...], tuple[Any, Any]] = {}


def check_argv(argv: list[str]) -> tuple[int | None, list[str]]:
    """Handle ``--help`` / ``--cfg job``, refuse unknown flags and validate every input.

    Returns ``(status, overrides)``: a status to exit with now (0 after ``--help`` or
    ``--cfg job``, 2 after one line on stderr), or ``None`` and the overrides to run with. Nothing
    here imports Prefect, opens a connection or writes a file.
    """
    from otonom_trader.config.errors import ConfigError
    from otonom_trader.config.validation import compose_validated, validate_cycle
    from otonom_trader.persistence.database import DatabaseError

    if "--help" in argv or "-h" in argv:
        print(USAGE + _groups_help())
        return 0, []
    show_cfg = False
    if "--cfg" in argv:
        index = argv.index("--cfg")
        if argv[index + 1 : index + 2] not in (["job"], ["all"]):
            print("error: --cfg: expected 'job' (or 'all')", file=sys.stderr)
            return 2, []
        show_cfg = True
        argv = argv[:index] + argv[index + 2 :]
    overrides = [a for a in argv if a and a != "--serve"]
    bad = [a for a in overrides if a.startswith("-")]
    if bad:
        print(
            f"error: {bad[0]}: unknown flag; expected KEY=VALUE overrides (see --help)",
            file=sys.stderr,
        )
        return 2, []
    try:
        if show_cfg:
            from omegaconf import OmegaConf

            raw, _ = compose_validated(overrides)
            print(OmegaConf.to_yaml(raw, resolve=False), end="")
            return 0, []
        _VALIDATED[tuple(overrides)] = validate_cycle(overrides)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2, []
    except DatabaseError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 2, []
    return None, overrides


if __name__ == "__main__":
    # Refuse a bad input before Prefect is even imported (about a second on these machines).
    _EARLY_STATUS, _EARLY_OVERRIDES = check_argv(sys.argv[1:])
    if _EARLY_STATUS is not None:
        sys.exit(_EARLY_STATUS)
    if "--serve" in sys.argv[1:]:
        from otonom_trader.serving.serve import serve_checked

        sys.exit(serve_checked(_EARLY_OVERRIDES))


# Imported only once the input is known good (see the early check above).
from datetime import UTC, datetime  # noqa: E402
from decimal import Decimal  # noqa: E402
from typing import Any  # noqa: E402

from prefect import get_run_logger, task  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.context import get_run_context  # noqa: E402
from prefect.states import Completed, Failed, State  # noqa: E402

from otonom_trader.accounts.concurrency import account_concurrency  # noqa: E402
from otonom_trader.alerts.hooks import alert_on_flow_crashed, alert_on_flow_failure  # noqa: E402
from otonom_trader.broker.errors import FinalBrokerError  # noqa: E402
from otonom_trader.config.compose import config_hash  # noqa: E402
from otonom_trader.config.compose_cache import remember_composition  # noqa: E402
from otonom_trader.config.errors import ConfigError, ConfigValueError  # noqa: E402
from otonom_trader.config.validation import validate_cycle  # noqa: E402
from otonom_trader.daemon import steps  # noqa: E402
from otonom_trader.daemon.context import CycleContext, build_context  # noqa: E402
from otonom_trader.daemon.cycle import (  # noqa: E402
    EXIT_ACCOUNT_BUSY,
    SKIPPED,
    CycleSteps,
    record_skipped,
    run_cycle,
)
from otonom_trader.daemon.summary import BookLine, OrderLine, RunSummary  # noqa: E402
from otonom_trader.fleet.venue_limit import share_venue_budgets  # noqa: E402
from otonom_trader.internal_errors import keep_tracebacks_off_the_console, log_path  # noqa: E402
from otonom_trader.serving.plain_parameters import plain_parameters_flow  # noqa: E402
from otonom_trader.serving.run_names import run_name  # noqa: E402

#: The artifact every run publishes (the same key across runs: the UI shows its history).
SUMMARY_ARTIFACT = "cycle-summary"

#: Errors that repeat whatever the wait: a refused key or signature, a missing permission (or a
#: forbidden one), a bad configuration. Retrying them only delays the failure alert.
FINAL_ERRORS: tuple[type[BaseException], ...] = (
    FinalBrokerError,
    ConfigError,
    ConfigValueError,
    PermissionError,
)


def _error_of(state: Any) -> BaseException | None:
    """The exception a failed state holds (bare, or in the ``ResultRecord`` the engine wraps it
    in when a result store is configured), else the one reading its result raises."""
    data = getattr(state, "data", None)
    error = getattr(data, "result", data)
    if isinstance(error, BaseException):
        return error
    try:
        result = state.result(raise_on_failure=False)
    except Exception as exc:  # noqa: BLE001 - an unreadable result: judge what was raised
        return exc
    return result if isinstance(result, BaseException) else None


def _input_error(state: Any) -> bool:
    """True when a failed state holds a ``ConfigError`` (a refused input)."""
    return isinstance(_error_of(state), ConfigError)


def retry_unless_final(_task: Any, _task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed read unless its error is final."""
    return not isinstance(_error_of(state), FINAL_ERRORS)


def _alert_on_failure(flow: Any, flow_run: Any, state: Any) -> Any:
    """``on_failure``: alert, except for a refused input (the caller got its one-line error;
    a bad deployment parameter must not page anyone on every scheduled run)."""
    if _input_error(state):
        return None
    return alert_on_flow_failure(flow, flow_run, state)


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


def _flow_run_name() -> str:
    """``shadow-binance_testnet-2026-11-29T18:05Z``: mode, broker option, scheduled start."""
    from prefect.runtime import flow_run

    overrides = list(flow_run.parameters.get("overrides") or [])
    when = flow_run.scheduled_start_time
    return run_name(overrides, when if isinstance(when, datetime) else datetime.now(UTC))


@plain_parameters_flow(
    name="otonom-daemon",
    flow_run_name=_flow_run_name,
    log_prints=True,
    retries=0,
    on_failure=[_alert_on_failure],
    on_crashed=[alert_on_flow_crashed],
)
def daemon(overrides: list[str] = []) -> State[Any]:  # noqa: B006 - the deployment parameter
    """One trading cycle with the configuration ``conf/`` + ``overrides``.

    The run publishes a ``cycle-summary`` artifact, logs one line per order and per fill, and
    ends with the summary's headline as its state message and its key numbers as its result.
    A user mistake (``ConfigError``) fails the run with one line and no traceback."""
    logger = get_run_logger()
    try:
        summary = _cycle(list(overrides))
    except ConfigError as exc:
        line = f"config error: {exc}"
        logger.error("%s", line)
        _publish_summary_artifact(f"## Refused\n\n{line}\n", line)
        return Failed(message=line, data=exc)
    except Exception as exc:  # a bug or an outage: Prefect keeps the traceback in the log
        line = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        _publish_summary_artifact(f"## Failed\n\n{line}\n", f"failed: {line}")
        raise
    _FINISHED[summary.run_id] = summary  # for this process's main(): no read back needed
    for line in summary.log_lines():
        logger.info("%s", line)
    _publish_summary_artifact(summary.to_markdown(), summary.headline())
    return Completed(message=summary.headline(), data=summary.key_numbers())


def _cycle(overrides: list[str]) -> RunSummary:
    # The command line's run takes the configuration check_argv just validated; a deployment's
    # run validates for itself.
    validated = _VALIDATED.pop(tuple(overrides), None)
    raw, app = validated if validated is not None else validate_cycle(overrides)
    # A fleet's workers share each venue's request weight through Prefect (before the clients
    # of build_context take their budgets); off, this process paces itself alone.
    share_venue_budgets(app.bot.shared_venue_budget)
    ctx = build_context(app, config_hash(raw))
    remember_composition(overrides, raw)  # the next start with these overrides skips Hydra
    flow_run = getattr(get_run_context(), "flow_run", None)
    flow_run_id = str(flow_run.id) if flow_run is not None else None
    run_id = flow_run_id or ctx.new_run_id()
    try:
        if flow_run is None or flow_run.deployment_id is None:
            # Started by hand (python flows/daemon.py, a script): the account's database lease
            # orders it against every other cycle, as it does a CLI run. Prefect's account limit
            # is for the runs Prefect schedules, where its UI also shows who waits.
            return run_cycle(ctx, run_id, flow_run_id=flow_run_id, cycle_steps=FLOW_STEPS)
        with account_concurrency(ctx.account.account_id, app.execution.lease_wait_seconds) as slot:
            if not slot.acquired:
                return record_skipped(ctx, run_id, flow_run_id, slot.reason)
            return run_cycle(ctx, run_id, flow_run_id=flow_run_id, cycle_steps=FLOW_STEPS)
    finally:
        ctx.close()


def _publish_summary_artifact(markdown: str, description: str) -> None:
    """The run's ``cycle-summary`` artifact (an unreachable API must not fail the cycle)."""
    try:
        create_markdown_artifact(
            key=SUMMARY_ARTIFACT, markdown=markdown, description=description[:500]
        )
    except Exception as exc:  # noqa: BLE001 - the cycle is recorded in the database anyway
        get_run_logger().warning("cycle-summary artifact not published: %s", exc)


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


def main(argv: list[str], *, checked: bool = False) -> int:
    """Validate every input (unless ``checked``), run the flow, print the summary."""
    from otonom_trader.config.errors import ConfigError
    from otonom_trader.persistence.database import DatabaseError

    status, overrides = (None, list(argv)) if checked else check_argv(list(argv))
    if status is not None:
        return status
    # Past validation, an error is a bug or an outage: tracebacks go to the log file, not the
    # terminal (the run's own log in Prefect keeps them too).
    keep_tracebacks_off_the_console()
    validated = _VALIDATED.get(tuple(overrides))  # the flow run takes it; the summary reuses it
    try:
        numbers = daemon(overrides)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except DatabaseError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the flow logged the traceback; one line here
        print(
            f"cycle failed: {type(exc).__name__}: {' '.join(str(exc).split())} "
            f"(traceback in {log_path()})",
            file=sys.stderr,
        )
        return 1
    run_id = str(numbers["run_id"])
    summary = _FINISHED.pop(run_id, None) or stored_summary(
        overrides, run_id, app=validated[1] if validated else None
    )
    if summary.status == SKIPPED:
        print(f"skipped: {summary.notes[-1]}", file=sys.stderr)
        return EXIT_ACCOUNT_BUSY
    summary.render()
    return 0


def stored_summary(overrides: list[str], run_id: str, *, app: Any = None) -> RunSummary:
    """The full summary of run ``run_id`` as the cycle recorded it (the flow's result holds only
    its key numbers). ``app``: the configuration already composed for ``overrides``."""
    from sqlalchemy import select

    from otonom_trader.config.validation import compose_validated
    from otonom_trader.persistence.database import Database
    from otonom_trader.persistence.models import DaemonRun

    if app is None:
        _, app = compose_validated(overrides)
    db = Database(app.db.url, busy_timeout_ms=app.db.busy_timeout_ms, migrate=False)
    try:
        with db.session() as session:
            text = session.scalar(select(DaemonRun.summary_json).where(DaemonRun.run_id == run_id))
    finally:
        db.dispose()
    if text is None:
        raise RuntimeError(f"run {run_id} left no summary in the database")
    return RunSummary.from_json(text)


if __name__ == "__main__":
    _STATUS = main(_EARLY_OVERRIDES, checked=True)
    # The cycle is recorded, its logs and events flushed by Prefect's exit hooks: the process
    # ends. Freezing the heap spares the interpreter's last garbage collection over every object
    # Prefect, SQLAlchemy and pydantic made, about 0.2-0.3 s of each run's exit (measured by
    # bench/bench_cold_start.py); the memory goes back to the system either way. Only here, in
    # a process that is about to end: in a long-lived one, frozen objects would never be freed.
    import gc

    gc.freeze()
    sys.exit(_STATUS)
