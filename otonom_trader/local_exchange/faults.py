"""Switchable faults of the local exchanges: what a real exchange does on a bad day.

A test arms a fault with :meth:`FaultPlan.inject`; the next matching request (by method and path)
consumes one use of it. Kinds:

==================  ===============================================================================
``http_429``        HTTP 429 with Binance's ``-1003`` body (rate limit) and ``Retry-After``
``http_418``        HTTP 418 with ``-1003`` (IP auto-banned for repeated 429s)
``http_500``        HTTP 500, ``502``/``503`` likewise: a bare gateway error page, nothing executed
``code_-1007``      HTTP 503 with ``-1007`` "Timeout waiting for response from backend server. Send
                    status unknown; execution status unknown." (nothing executed here, but the
                    client cannot know that)
``delay``           wait ``seconds`` before handling the request normally (a client with a shorter
                    timeout gives up while the exchange still executes the request)
``drop_connection`` close the socket without reading a reply: nothing executed
``lost_reply``      execute the request (an order IS placed), then close the socket without reply
``slow_reply``      execute the request (an order IS placed), then hold the reply ``seconds`` (or
                    until ``release()``): the order is in flight for the client. ``executed`` is
                    an event a test waits on to act at exactly that moment (kill the client)
==================  ===============================================================================

``execute=True`` on an error-status kind (5xx, ``code_-1007``) executes the request first and then
answers with the error instead of the real reply: the "it failed, but the order exists" case.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum


class FaultKind(StrEnum):
    """The faults a local exchange can inject."""

    HTTP_429 = "http_429"
    HTTP_418 = "http_418"
    HTTP_500 = "http_500"
    HTTP_502 = "http_502"
    HTTP_503 = "http_503"
    CODE_1007 = "code_-1007"
    DELAY = "delay"
    DROP_CONNECTION = "drop_connection"
    LOST_REPLY = "lost_reply"
    SLOW_REPLY = "slow_reply"


_EXECUTABLE = frozenset(
    {FaultKind.HTTP_500, FaultKind.HTTP_502, FaultKind.HTTP_503, FaultKind.CODE_1007}
)


@dataclass
class Fault:
    """One armed fault: ``remaining`` uses left, matching ``method``/``path`` (None = any)."""

    kind: FaultKind
    remaining: int
    path: str | None = None
    method: str | None = None
    seconds: float = 0.0
    execute: bool = False
    executed: threading.Event = field(default_factory=threading.Event, repr=False)
    released: threading.Event = field(default_factory=threading.Event, repr=False)

    def release(self) -> None:
        """End a ``slow_reply`` wait now (the reply is sent)."""
        self.released.set()

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with this method and path (no query string) triggers the fault."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path == path


class FaultPlan:
    """Thread-safe list of armed faults, consumed in the order they were injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(
        self,
        kind: str | FaultKind,
        count: int = 1,
        path: str | None = None,
        method: str | None = None,
        seconds: float = 0.0,
        execute: bool = False,
    ) -> Fault:
        """Arm ``kind`` for the next ``count`` matching requests.

        Raises ``ValueError`` naming the bad argument for an unknown kind, a count below 1, a
        ``delay`` without positive ``seconds``, or ``execute`` on a kind it does not apply to.
        """
        try:
            fault_kind = FaultKind(kind)
        except ValueError:
            known = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"inject_fault: unknown kind {kind!r} (known: {known})") from None
        if count < 1:
            raise ValueError(f"inject_fault: count must be at least 1, got {count}")
        if fault_kind in (FaultKind.DELAY, FaultKind.SLOW_REPLY) and seconds <= 0:
            raise ValueError(f"inject_fault: kind {fault_kind.value!r} needs seconds > 0")
        if execute and fault_kind not in _EXECUTABLE:
            raise ValueError(
                "inject_fault: execute=True applies to 5xx and code_-1007, "
                f"not {fault_kind.value!r}"
            )
        fault = Fault(fault_kind, count, path, method, seconds, execute)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first fault matching this request, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        """Faults still armed (a copy)."""
        with self._lock:
            return list(self._faults)
