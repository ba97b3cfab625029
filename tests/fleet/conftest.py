"""Fixtures of the fleet tests. ``host_network``: simulated hosts as network namespaces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otonom_trader.testkit.netns import HostNetwork, unavailable_reason


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "multi_host: builds hosts as Linux network namespaces (root only; skips elsewhere) and "
        "runs a Prefect server, workers and exchanges on them (the slow multi-host test)",
    )


@pytest.fixture(scope="module")
def host_network() -> Iterator[HostNetwork]:
    """Hosts ``a`` and ``b`` (one worker each) and ``x`` (the exchange) on a private bridge;
    the root namespace is the gateway (Prefect server, the PostgreSQL forwarder). Skips, with
    the reason, where namespaces cannot be created."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    with HostNetwork(["a", "b", "x"]) as network:
        yield network
