"""Load the flow modules from flows/ (they are entrypoints, not a package)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from otonom_trader.config.compose import PROJECT_ROOT


def load_flow_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"otonom_flows_{name}", PROJECT_ROOT / "flows" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def daemon_flow_module() -> ModuleType:
    return load_flow_module("daemon")
