"""prefect.yaml deploys to a real local Prefect server, and a worker runs one deployment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL

from otonom_trader.config.compose import PROJECT_ROOT

POOL = "otonom-process"


def _prefect(
    args: list[str], env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    prefect = Path(sys.executable).parent / "prefect"
    return subprocess.run(
        [str(prefect), "--no-prompt", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_prefect_yaml_declares_the_deployments_the_readme_promises() -> None:
    spec = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}

    assert {"paper-hourly", "shadow-hourly", "live-hourly", "watchdog"} <= set(deployments)
    for deployment in deployments.values():
        assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
        assert deployment["work_pool"]["name"] == POOL
        assert all(isinstance(o, str) for o in deployment["parameters"]["overrides"])
        assert deployment["schedules"][0]["cron"]
    assert deployments["live-hourly"]["paused"] is True
    assert deployments["live-hourly"]["schedules"][0]["active"] is False
    assert "mode=shadow" in deployments["shadow-hourly"]["parameters"]["overrides"]


@pytest.mark.prefect
@pytest.mark.slow
def test_deploy_all_then_a_process_worker_runs_a_deployment(
    prefect_harness: None, tmp_path: Path
) -> None:
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=str(PREFECT_API_URL.value()),
        OTONOM_HOME=str(tmp_path / "home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PWD=str(PROJECT_ROOT),
    )
    created = _prefect(["work-pool", "create", POOL, "--type", "process", "--overwrite"], env)
    assert created.returncode == 0, created.stdout + created.stderr

    deployed = _prefect(["deploy", "--all"], env)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]

    names = asyncio.run(_deployment_names())
    assert {
        "otonom-daemon/paper-hourly",
        "otonom-daemon/shadow-hourly",
        "otonom-daemon/live-hourly",
    } <= names
    flow_run = run_deployment(
        "otonom-daemon/paper-hourly",
        parameters={"overrides": ["mode=paper", "alerts.enabled=false"]},
        timeout=0,
    )
    worker = _prefect(["worker", "start", "--pool", POOL, "--run-once"], env, timeout=240)
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]

    final = asyncio.run(_read_flow_run(flow_run.id))
    assert final.state is not None and final.state.is_completed(), final.state
    assert final.parameters == {"overrides": ["mode=paper", "alerts.enabled=false"]}
    assert (tmp_path / "home" / "otonom.db").is_file()
    # A deployment's run orders itself on Prefect's account limit (a run by hand does not).
    limits = asyncio.run(_global_limit_names())
    assert "account-paper" in limits, limits


async def _global_limit_names() -> set[str]:
    async with get_client() as client:
        return {limit.name for limit in await client.read_global_concurrency_limits()}


async def _deployment_names() -> set[str]:
    async with get_client() as client:
        deployments = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
    return {f"{flows[d.flow_id]}/{d.name}" for d in deployments}


async def _read_flow_run(flow_run_id: object) -> object:
    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
