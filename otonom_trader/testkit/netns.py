"""Several hosts on one machine: Linux network namespaces on a private bridge.

A test of a fleet needs hosts that reach each other only over the network. ``HostNetwork``
builds them with ``ip``: a bridge in the root namespace holding the gateway address of a private
``/24`` (10.X.Y.1), and per host a namespace (``otn-<pid>-<token>-<role>``) whose ``eth0`` is a
veth whose peer is on that bridge (10.X.Y.2, .3, ...), loopback up. Hosts reach each other and
the gateway through the bridge (frames are switched, not routed: no host-wide sysctl such as
``ip_forward`` is touched); the root namespace's ``127.0.0.1`` is not reachable from a host, so
a service listening only there (PostgreSQL) is reached through a ``TcpForwarder`` on the gateway.

Run a program on a host with :meth:`HostNetwork.popen` (``ip netns exec``), or bind sockets of
this process inside a host with :meth:`HostNetwork.run_in` (``setns`` on a thread of its own: a
server started there listens in that namespace only, while the test keeps its object).
:meth:`HostNetwork.kill_host` SIGKILLs every process in a host, as if it lost power.

Everything is torn down on ``close()`` (also after a failure), and a new network first removes
what a dead earlier session of the same prefix left behind (its owner's pid is in the names).
``unavailable_reason()`` says why namespaces cannot be made here (not root, no ``ip``, EPERM),
so a test can skip with that reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import random
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

#: Every namespace this module creates is named ``otn-<owner pid>-<token>-<role>``.
NETNS_PREFIX = "otn"
#: Root-namespace links: the bridge ``otb<pid hex>x<token>``, veth ends ``otv``/``otp`` + the same.
LINK_PREFIXES = ("otb", "otv", "otp")
_NETNS_DIR = Path("/var/run/netns")
_CLONE_NEWNET = 0x40000000
_T = TypeVar("_T")


class NetnsError(RuntimeError):
    """A namespace, link or address could not be set up (the ``ip`` command's own words)."""


@dataclass(frozen=True)
class Host:
    """One simulated host: its role (``a``), namespace name and address on the bridge."""

    role: str
    netns: str
    address: str


def unavailable_reason() -> str | None:
    """Why network namespaces cannot be created here, or ``None`` when they can.

    Checks the effective user, the ``ip`` command and then really creates and deletes one
    namespace (a container without ``CAP_SYS_ADMIN`` refuses with EPERM only then).
    """
    if os.geteuid() != 0:
        return f"network namespaces need root (running as uid {os.geteuid()})"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = f"{NETNS_PREFIX}-{os.getpid()}-probe{secrets.token_hex(2)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"'ip netns add' failed: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_of_netns(name: str) -> int | None:
    parts = name.split("-")
    if len(parts) < 3 or parts[0] != NETNS_PREFIX or not parts[1].isdigit():
        return None
    return int(parts[1])


def _owner_of_link(name: str) -> int | None:
    # otb<pid hex>x<token>: 'x' is never a hex digit, so it ends the pid.
    if not name.startswith(LINK_PREFIXES) or "x" not in name[3:]:
        return None
    try:
        return int(name[3:].split("x", 1)[0], 16)
    except ValueError:
        return None


def netns_pids(netns: str) -> list[int]:
    """The processes living in namespace ``netns`` (``ip netns pids``)."""
    done = _ip("netns", "pids", netns, check=False)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def _kill_all(netns: str, timeout: float = 10.0) -> list[int]:
    """SIGKILL every process in ``netns`` until none is left (a dying worker may still spawn)."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = netns_pids(netns)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)  # a poll between kill rounds, not a wait for an outcome
    return killed


def clean_leftovers() -> list[str]:
    """Delete the namespaces and links of this module whose owning process is gone; return
    their names. A live session's (another CI job on the same kernel) are left alone."""
    removed: list[str] = []
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ", 1)[0].strip()
        owner = _owner_of_netns(name)
        if owner is not None and not _alive(owner):
            _kill_all(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    for line in _ip("-o", "link", "show", check=False).stdout.split("\n"):
        fields = line.split(":")
        if len(fields) < 2:
            continue
        name = fields[1].strip().split("@", 1)[0]
        owner = _owner_of_link(name)
        if owner is not None and not _alive(owner):
            _ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _used_networks() -> list[ipaddress.IPv4Network]:
    networks = []
    for line in _ip("-4", "-o", "addr", "show", check=False).stdout.split("\n"):
        fields = line.split()
        if "inet" in fields:
            networks.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    for line in _ip("-4", "route", "show", check=False).stdout.split("\n"):
        first = line.split(" ", 1)[0]
        if first and first != "default":
            with contextlib.suppress(ValueError):
                networks.append(ipaddress.IPv4Network(first, strict=False))
    return networks


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.X.Y.0/24 that no address or route of the root namespace overlaps."""
    used = _used_networks()
    for _ in range(200):
        candidate = ipaddress.IPv4Network(
            f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24"
        )
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise NetnsError("no free 10.200-254.x.0/24 subnet for the test network")


def _setns(netns: str) -> None:
    """Move the calling thread into ``netns`` (sockets it opens, threads it starts, live there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(_NETNS_DIR / netns, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {netns}: {os.strerror(errno)}")
    finally:
        os.close(fd)


class HostNetwork:
    """Hosts ``roles`` (e.g. ``["a", "b", "x"]``) as namespaces on one private bridge.

    ``gateway`` is the root namespace's address on the bridge; ``hosts[role]`` each host.
    Use as a context manager (or call ``start()`` / ``close()``).
    """

    def __init__(self, roles: Sequence[str]) -> None:
        if not roles or len(set(roles)) != len(roles) or len(roles) > 16:
            raise ValueError(f"roles must be 1-16 distinct names, got {list(roles)!r}")
        bad = [r for r in roles if not (r.isascii() and r.isalnum() and len(r) <= 4)]
        if bad:
            raise ValueError(f"role {bad[0]!r}: use 1-4 ascii letters or digits")
        self.roles = list(roles)
        self.token = secrets.token_hex(2)[:3]
        pid = os.getpid()
        self._netns_base = f"{NETNS_PREFIX}-{pid}-{self.token}"
        self._link_base = f"{pid:x}x{self.token}"  # at most 6+1+3: link names fit in 15
        self.bridge = f"otb{self._link_base}"
        self.gateway = ""
        self.hosts: dict[str, Host] = {}
        self._processes: list[subprocess.Popen[Any]] = []

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        """Clean dead sessions' leftovers, then build the bridge and one namespace per role."""
        clean_leftovers()
        subnet = _free_subnet()
        addresses = list(subnet.hosts())
        self.gateway = str(addresses[0])
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/{subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for index, role in enumerate(self.roles):
                host = Host(role, f"{self._netns_base}-{role}", str(addresses[index + 1]))
                self._add_host(host, subnet.prefixlen, index)
                self.hosts[role] = host
        except BaseException:
            self.close()
            raise
        return self

    def _add_host(self, host: Host, prefixlen: int, index: int) -> None:
        outer, inner = f"otv{self._link_base}{index:x}", f"otp{self._link_base}{index:x}"
        if len(outer) > 15:
            raise NetnsError(f"link name {outer!r} is longer than the kernel's 15 characters")
        _ip("netns", "add", host.netns)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        _ip("link", "set", inner, "netns", host.netns)
        _ip("-n", host.netns, "link", "set", inner, "name", "eth0")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/{prefixlen}", "dev", "eth0")
        _ip("-n", host.netns, "link", "set", "eth0", "up")
        _ip("-n", host.netns, "link", "set", "lo", "up")

    def close(self) -> None:
        """Kill every process on every host, delete the namespaces and the bridge (idempotent;
        errors are swallowed so one failure does not leave the rest behind)."""
        for process in self._processes:
            if process.poll() is None:  # not reaped yet: its group id is still ours
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for role in self.roles:
            netns = f"{self._netns_base}-{role}"
            if (_NETNS_DIR / netns).exists():
                _kill_all(netns)
                _ip("netns", "del", netns, check=False)
        _ip("link", "del", self.bridge, check=False)
        for process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self._processes.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------------------- use
    def popen(
        self, role: str, argv: Sequence[str], env: Mapping[str, str], **kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` on host ``role`` (``ip netns exec``) in a session of its own."""
        host = self.hosts[role]
        process = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, *argv],
            env=dict(env),
            start_new_session=True,
            **kwargs,
        )
        self._processes.append(process)
        return process

    def kill_host(self, role: str) -> list[int]:
        """SIGKILL every process on host ``role`` (a power cut); return the pids killed."""
        return _kill_all(self.hosts[role].netns)

    def role_of_pid(self, pid: int) -> str | None:
        """The host process ``pid`` runs on, or ``None`` (the root namespace, or gone)."""
        for role, host in self.hosts.items():
            if pid in netns_pids(host.netns):
                return role
        return None

    def run_in(self, role: str, fn: Callable[[], _T]) -> _T:
        """Call ``fn`` on a new thread moved into host ``role``'s namespace; return its result.

        Sockets ``fn`` opens and threads it starts stay in that namespace for good (a server
        started here serves the host's address only), the rest of this process is untouched.
        """
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                _setns(self.hosts[role].netns)
                box["result"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"netns-{role}", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["result"]


class TcpForwarder:
    """Forward TCP connections from ``listen`` (e.g. the gateway) to ``target`` (127.0.0.1).

    It runs in the root namespace on one thread (a selector, no thread per connection), so a
    host reaches a service that listens only on the root namespace's loopback. When either side
    closes, the other is closed too: a killed client's PostgreSQL session ends (and with it its
    advisory locks) as it would over a real network.
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self._server = socket.create_server(listen, reuse_port=False)
        self._server.setblocking(False)
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tcp-forwarder", daemon=True)
        self.connections = 0

    def start(self) -> Self:
        """Accept and forward in a background thread; returns ``self``."""
        self._selector.register(self._server, selectors.EVENT_READ)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop forwarding and close every connection (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for sock in list(self._peers):
            self._drop(sock)
        with contextlib.suppress(OSError):
            self._server.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._server:
                    self._accept()
                elif sock in self._peers:
                    self._pump(sock)

    def _accept(self) -> None:
        try:
            client, _ = self._server.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        self.connections += 1
        for sock, peer in ((client, upstream), (upstream, client)):
            sock.setblocking(True)
            sock.settimeout(30)  # a write to a stalled peer fails instead of hanging the loop
            self._peers[sock] = peer
            self._selector.register(sock, selectors.EVENT_READ)

    def _pump(self, sock: socket.socket) -> None:
        peer = self._peers[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        for end in (sock, self._peers.get(sock)):
            if end is None or end not in self._peers:
                continue
            self._peers.pop(end, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(end)
            with contextlib.suppress(OSError):
                end.close()


def free_port(address: str) -> int:
    """A TCP port free on ``address`` right now (for a server that cannot take port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
