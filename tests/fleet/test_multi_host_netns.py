"""The hosts harness itself (``otonom_trader.testkit.netns``): reachability, kill, teardown."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from otonom_trader.testkit.netns import (
    HostNetwork,
    TcpForwarder,
    clean_leftovers,
    netns_pids,
    unavailable_reason,
)

pytestmark = pytest.mark.multi_host


def _connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=3):
            return True
    except OSError:
        return False


def _listen_in(network: HostNetwork, role: str) -> socket.socket:
    address = network.hosts[role].address
    return network.run_in(role, lambda: socket.create_server((address, 0)))


def test_hosts_reach_each_other_and_the_gateway_but_not_its_loopback(
    host_network: HostNetwork,
) -> None:
    exchange = _listen_in(host_network, "x")
    port = exchange.getsockname()[1]
    gateway = socket.create_server((host_network.gateway, 0))
    x_address = host_network.hosts["x"].address
    try:
        from_a = host_network.run_in(
            "a",
            lambda: (
                _connects(x_address, port),
                _connects(host_network.gateway, gateway.getsockname()[1]),
                _connects("127.0.0.1", 5432),  # PostgreSQL on the root's loopback only
            ),
        )
    finally:
        exchange.close()
        gateway.close()

    assert from_a == (True, True, False)


@pytest.mark.postgres
def test_a_host_reaches_postgresql_through_the_forwarder(host_network: HostNetwork) -> None:
    with TcpForwarder((host_network.gateway, 0), ("127.0.0.1", 5432)) as forwarder:
        address, port = forwarder.address

        def query() -> object:
            with psycopg.connect(
                host=address, port=port, user="postgres", dbname="postgres", connect_timeout=5
            ) as conn:
                row = conn.execute("SELECT host(inet_client_addr())").fetchone()
                return row[0] if row else None

        try:
            client = host_network.run_in("b", query)
        except psycopg.OperationalError as exc:
            pytest.skip(f"PostgreSQL at 127.0.0.1:5432 did not answer ({exc}): skipped")

    # PostgreSQL saw the forwarder's loopback connection, never the host's own address.
    assert client == "127.0.0.1"
    assert forwarder.connections == 1


def test_kill_host_kills_every_process_on_it(host_network: HostNetwork) -> None:
    sleeper = host_network.popen(
        "a", [sys.executable, "-c", "import time; time.sleep(120)"], env={}
    )
    netns = host_network.hosts["a"].netns

    killed = host_network.kill_host("a")

    assert sleeper.wait(timeout=10) == -9
    assert sleeper.pid in killed
    assert netns_pids(netns) == []


def _names(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True).stdout


def test_close_removes_the_namespaces_and_the_bridge_even_after_a_failure() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    network = HostNetwork(["p", "q"])
    with pytest.raises(RuntimeError, match="a test failed here"), network:
        assert network.hosts["p"].netns in _names("netns", "list")
        raise RuntimeError("a test failed here")

    assert network.hosts["p"].netns not in _names("netns", "list")
    assert network.hosts["q"].netns not in _names("netns", "list")
    assert network.bridge not in _names("-o", "link", "show")


def test_leftovers_of_a_dead_session_are_removed_and_a_live_ones_kept() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")
    # pid_max itself is never a process id: an owner that is surely gone.
    dead = int(Path("/proc/sys/kernel/pid_max").read_text())
    dead_netns, dead_bridge = f"otn-{dead}-abc-a", f"otb{dead:x}xabc"
    with HostNetwork(["l"]) as live:
        subprocess.run(["ip", "netns", "add", dead_netns], check=True)
        subprocess.run(["ip", "link", "add", dead_bridge, "type", "bridge"], check=True)

        removed = clean_leftovers()

        assert {dead_netns, dead_bridge} <= set(removed)
        assert live.hosts["l"].netns in _names("netns", "list")
        assert live.bridge in _names("-o", "link", "show")
    assert dead_netns not in _names("netns", "list")
    assert dead_bridge not in _names("-o", "link", "show")
