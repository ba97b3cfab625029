"""``otonom-trader serve`` (and ``python flows/daemon.py --serve``): run all the time.

One process serves two Prefect deployments with Prefect's own runner, until stopped:

* ``otonom-daemon/serve-<mode>-<broker>``: a cycle shortly after every candle close of the
  strategy's timeframe (``otonom_trader.serving.schedule``), with the overrides given;
* ``watchdog/serve-<mode>-<broker>``: the watchdog every ten minutes, on the same configuration,
  so a daemon that stops cycling is still reported.

Each run executes in its own process (Prefect's runner), with the same logs, artifacts and
run names as any other run. **SIGTERM** (``kill``, ``systemctl stop``, ``docker stop``) stops
picking up new runs, lets the cycle in flight finish, then exits with status 0. Ctrl-C (SIGINT)
reaches the cycle's process too and stops it at once; use SIGTERM for a clean stop. The
schedules are paused while nothing serves them (no pile of late runs on restart) and active again
on the next ``serve``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from otonom_trader.serving.environment import apply_prefect_defaults

if TYPE_CHECKING:
    from otonom_trader.serving.schedule import CycleSchedule

#: How often the watchdog looks (it alerts only past the schedule's gap limit).
WATCHDOG_CRON = "*/10 * * * *"
#: How often the draining runner looks whether the cycle in flight has ended.
DRAIN_POLL_SECONDS = 0.5


def serve_checked(overrides: list[str], *, interval_seconds: float | None = None) -> int:
    """Serve the daemon with ``overrides`` (already validated by the caller's one validation
    pass) until SIGTERM; return the exit status. ``interval_seconds`` replaces the candle
    schedule (tests, or a deliberately different cadence)."""
    apply_prefect_defaults()  # before Prefect's import below
    from otonom_trader.alerts.schedule import gap_minutes_every, strategy_timeframe
    from otonom_trader.config.validation import compose_validated
    from otonom_trader.serving.run_names import chosen_option
    from otonom_trader.serving.schedule import cycle_schedule, interval_schedule

    _, app = compose_validated(overrides)
    timeframe = strategy_timeframe(app.strategy.path)
    if interval_seconds and app.alerts.max_gap_minutes is None:
        # The gap alert follows the schedule actually served, not the candles.
        gap = gap_minutes_every(interval_seconds)
        overrides = [*overrides, f"alerts.max_gap_minutes={gap:g}"]
    schedule = (
        interval_schedule(interval_seconds) if interval_seconds else cycle_schedule(timeframe)
    )
    name = f"serve-{chosen_option('mode', overrides)}-{chosen_option('broker', overrides)}"
    runner = _runner(name, overrides, schedule)
    print(
        f"serving otonom-daemon/{name}: a cycle on {schedule.describe()} "
        f"(strategy timeframe {timeframe}), watchdog/{name} on cron '{WATCHDOG_CRON}'",
        flush=True,
    )
    print(f"Prefect API: {_api_url()}; stop with SIGTERM (kill {_pid()})", flush=True)
    stop = threading.Event()  # set when serving ends: side services (the Telegram bot) stop too
    log_file = start_side_services(app, stop)
    print(f"activity log: {log_file}", flush=True)
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        print("serve: interrupted (Ctrl-C); the cycle in flight was stopped", file=sys.stderr)
        return 130
    finally:
        stop.set()
    print("serve: stopped cleanly", flush=True)
    return 0


def start_side_services(app: Any, stop: threading.Event, *, telegram_api: str | None = None) -> Any:
    """What runs beside the served flows: the activity log file (secrets masked) and, when
    Telegram is configured, the command bot answering the configured chats (long polling)
    until ``stop`` is set. ``telegram_api`` replaces Telegram's address (the tests' stand-in).
    Returns the log file's path."""
    from otonom_trader.home import otonom_home
    from otonom_trader.operator.logfiles import configured_secrets, install_file_logging
    from otonom_trader.operator.telegram_commands import TELEGRAM_API, TelegramCommandBot
    from otonom_trader.persistence.database import Database

    log_file = install_file_logging(otonom_home(), configured_secrets(app))
    bot = TelegramCommandBot.from_config(
        app, Database(app.db.url), poll_timeout_s=10, api_base=telegram_api or TELEGRAM_API
    )
    if bot is not None:
        thread = threading.Thread(target=bot.run, args=(stop,), name="telegram-commands")
        thread.daemon = True  # never keeps a stopped serve alive
        thread.start()
        print("telegram: answering /status /positions /profit /stop /resume /help", flush=True)
    return log_file


def _runner(name: str, overrides: list[str], schedule: CycleSchedule) -> Any:
    from prefect.schedules import Cron, Interval

    daemon_flow = load_flow_module("daemon").daemon
    watchdog_flow = load_flow_module("watchdog").watchdog
    if schedule.cron is not None:
        cycle = Cron(schedule.cron, timezone="UTC")
    else:
        assert schedule.interval is not None  # a CycleSchedule has one or the other
        cycle = Interval(schedule.interval, anchor_date=schedule.anchor, timezone="UTC")
    deployments = [
        daemon_flow.to_deployment(
            name,
            schedule=cycle,
            parameters={"overrides": list(overrides)},
            description="One trading cycle shortly after each candle close (otonom-trader serve).",
        ),
        watchdog_flow.to_deployment(
            name,
            schedule=Cron(WATCHDOG_CRON, timezone="UTC"),
            parameters={"overrides": list(overrides)},
            description="Alerts when the served daemon stops completing cycles.",
        ),
    ]
    runner = draining_runner_class()(name=f"otonom-{name}", pause_on_shutdown=True)
    for deployment in deployments:
        runner.add_deployment(deployment)
    return runner


def draining_runner_class() -> type:
    """Prefect's ``Runner`` whose SIGTERM lets the runs in flight finish.

    Prefect's own SIGTERM handler cancels the runs in flight: a trading cycle would stop
    between sending an order and recording it. This one stops taking new runs, waits until none
    is in flight, then stops the runner. It relies on the runner's scheduled-run poller
    (``stopping`` and the ids it is submitting, Prefect 3.9 as pinned in requirements.lock).
    """
    from prefect.runner import Runner

    class DrainingRunner(Runner):
        def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
            if not self.started or self.stopping or self._loop is None:
                sys.exit(0)
            self._logger.info("SIGTERM received: no new runs; finishing the runs in flight")
            print("serve: SIGTERM received, finishing the cycle in flight (if any)", flush=True)
            self._scheduled_run_poller.stopping = True
            self.execute_in_background(self._drain_then_stop)

        async def _drain_then_stop(self) -> None:
            poller = self._scheduled_run_poller
            while poller._submitting_flow_run_ids or self._process_manager.flow_run_count():  # noqa: SLF001
                await asyncio.sleep(DRAIN_POLL_SECONDS)
            await self.astop()

    return DrainingRunner


def load_flow_module(name: str) -> ModuleType:
    """``flows/<name>.py`` (entrypoints, not a package), loaded from the project."""
    import importlib.util

    from otonom_trader.config.compose import PROJECT_ROOT

    path = Path(PROJECT_ROOT) / "flows" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"otonom_flows_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered, so Prefect finds the file behind the flow (its deployment's entrypoint).
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value() or "none set: a temporary server (see the README)")


def _pid() -> int:
    import os

    return os.getpid()
