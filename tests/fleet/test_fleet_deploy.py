"""``fleet deploy`` / ``fleet status`` against a real Prefect server: one deployment per bot
with its overrides as the only parameter, idempotent, removal asked first, a process worker
runs a bot from the pool, and status reads Prefect's last run beside the database's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import prefect.main  # noqa: F401 - see below
import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from otonom_trader.cli import main
from otonom_trader.config.compose import PROJECT_ROOT

pytestmark = [pytest.mark.prefect]

# ``prefect.main`` sets up Prefect's logging when first imported: imported here, its console
# handler writes to the session's stream. First imported inside a capsys test (by the fleet
# command), the handler would keep that test's capture stream, closed after it, and every later
# flow test's log line would fail ("I/O operation on closed file").


def _write_fleet(tmp_path: Path, pool: str, bots: list[dict[str, Any]]) -> Path:
    lines = [f"pool: {pool}", "bots:"]
    for bot in bots:
        lines.append(f"  - name: {bot['name']}")
        lines.append(f"    overrides: {json.dumps(bot.get('overrides', []))}")
        for key in ("work_queue", "schedule"):
            if key in bot:
                lines.append(f"    {key}: {json.dumps(bot[key])}")
    path = tmp_path / f"fleet{uuid.uuid4().hex[:6]}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _deployment(name: str) -> Any:
    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(f"otonom-daemon/{name}")


def _actions(out: str) -> dict[str, str]:
    rows = [line.split() for line in out.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) >= 2 and row[1] in ACTIONS}


ACTIONS = {"created", "updated", "unchanged", "removed", "kept"}


def test_deploy_creates_one_deployment_per_bot_then_changes_nothing(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = f"t{uuid.uuid4().hex[:6]}"
    pool = f"pool-{p}"
    bots = [
        {"name": f"{p}-a", "overrides": ["mode=shadow", "broker=sim", "broker.label=acct-a"]},
        {
            "name": f"{p}-b",
            "overrides": ["mode=shadow", "broker=sim", "broker.label=acct-b"],
            "work_queue": "host-b",
        },
        {"name": f"{p}-p", "overrides": ["mode=paper"], "schedule": "300s"},
    ]
    path = _write_fleet(tmp_path, pool, bots)

    assert main(["fleet", "deploy", "--fleet", str(path)]) == 0
    assert set(_actions(capsys.readouterr().out).values()) == {"created"}

    a, b, paper = (_deployment(bot["name"]) for bot in bots)
    assert a.parameters == {"overrides": [*bots[0]["overrides"], f"bot.name={p}-a"]}
    assert a.entrypoint == "flows/daemon.py:daemon"
    assert a.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}
    ]
    assert a.work_pool_name == pool and a.work_queue_name == "default"
    assert b.work_queue_name == "host-b"
    assert a.schedules[0].schedule.cron == "1 * * * *"  # the strategy's 1h candles
    assert paper.schedules[0].schedule.interval.total_seconds() == 300
    account_a = next(t for t in a.tags if t.startswith("account:")).split(":", 1)[1]
    account_b = next(t for t in b.tags if t.startswith("account:")).split(":", 1)[1]
    assert account_a != account_b and account_a.startswith("sim-")
    assert {f"bot:{p}-a", f"fleet:{path.stem}", "otonom-fleet"} <= set(a.tags)
    assert "account:paper" in paper.tags
    # No per-deployment limit (a run a killed worker leaves Running would hold it for good and
    # cancel the bot's every next run); the account's leased limit orders the bot's runs.
    assert a.global_concurrency_limit is None
    with get_client(sync_client=True) as client:  # the accounts' shared limits exist
        for account in (account_a, account_b, "paper"):
            assert client.read_global_concurrency_limit_by_name(f"account-{account}").limit == 1

    assert main(["fleet", "deploy", "--fleet", str(path)]) == 0
    assert set(_actions(capsys.readouterr().out).values()) == {"unchanged"}
    assert _deployment(f"{p}-a").updated == a.updated

    # One bot changes, one leaves the file: no terminal to ask, so it is kept (status 1).
    bots[0]["overrides"] = [*bots[0]["overrides"], "guardrails=conservative"]
    path.write_text(_write_fleet(tmp_path, pool, bots[:2]).read_text())
    assert main(["fleet", "deploy", "--fleet", str(path)]) == 1
    captured = capsys.readouterr()
    assert _actions(captured.out) == {f"{p}-a": "updated", f"{p}-b": "unchanged", f"{p}-p": "kept"}
    assert "rerun with --yes" in captured.err
    assert "guardrails=conservative" in _deployment(f"{p}-a").parameters["overrides"]
    assert _deployment(f"{p}-p").id == paper.id

    assert main(["fleet", "deploy", "--fleet", str(path), "--yes"]) == 0
    assert _actions(capsys.readouterr().out)[f"{p}-p"] == "removed"
    with pytest.raises(ObjectNotFound):
        _deployment(f"{p}-p")


def test_a_bad_bot_or_a_taken_name_creates_nothing(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = f"t{uuid.uuid4().hex[:6]}"
    good = {"name": f"{p}-ok", "overrides": ["mode=paper"]}
    bad = _write_fleet(tmp_path, f"pool-{p}", [good, {"name": f"{p}-x", "overrides": ["x=1"]}])

    assert main(["fleet", "deploy", "--fleet", str(bad)]) == 2
    assert f"bot '{p}-x'" in capsys.readouterr().err
    with pytest.raises(ObjectNotFound):
        _deployment(f"{p}-ok")
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_work_pool(f"pool-{p}")

    # Another fleet file's bot of the same name is not overwritten.
    first = _write_fleet(tmp_path, f"pool-{p}", [good])
    assert main(["fleet", "deploy", "--fleet", str(first)]) == 0
    second = _write_fleet(tmp_path, f"pool-{p}", [{"name": f"{p}-new"}, good])
    capsys.readouterr()
    assert main(["fleet", "deploy", "--fleet", str(second)]) == 2
    assert f"belongs to fleet:{first.stem}" in capsys.readouterr().err
    with pytest.raises(ObjectNotFound):
        _deployment(f"{p}-new")


@pytest.mark.slow
def test_a_process_worker_runs_a_bot_and_status_shows_it(
    prefect_harness: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    p = f"t{uuid.uuid4().hex[:6]}"
    pool = f"pool-{p}"
    overrides = ["mode=paper", "alerts.enabled=false"]
    path = _write_fleet(tmp_path, pool, [{"name": f"{p}-p", "overrides": overrides}])
    assert main(["fleet", "deploy", "--fleet", str(path)]) == 0
    flow_run = run_deployment(f"otonom-daemon/{p}-p", timeout=0)

    worker_dir = tmp_path / "elsewhere"  # the pull step, not the worker's directory, finds it
    worker_dir.mkdir()
    env = dict(os.environ, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    prefect = Path(sys.executable).parent / "prefect"
    worker = subprocess.run(
        [str(prefect), "--no-prompt", "worker", "start", "--pool", pool, "--run-once"],
        cwd=worker_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    with get_client(sync_client=True) as client:
        ran = client.read_flow_run(flow_run.id)
    assert ran.state is not None and ran.state.is_completed(), ran.state
    assert ran.parameters == {"overrides": [*overrides, f"bot.name={p}-p"]}

    capsys.readouterr()
    assert main(["fleet", "status", "--fleet", str(path), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["bot"] == f"{p}-p" and row["deployment"] == "deployed"
    assert row["flow_run_state"] == "Completed" and row["flow_run"] == ran.name
    assert row["account"] == "paper"
    assert row["last_cycle"] == "succeeded"
    assert row["equity"] is not None and float(row["equity"]) > 0
    assert row["guard"] == "ok"
