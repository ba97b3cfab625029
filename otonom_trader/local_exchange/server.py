"""The HTTP plumbing shared by the local exchanges: a threaded server on 127.0.0.1.

:class:`LocalExchangeServer` owns the socket, the request log and the fault plan; a subclass
(:class:`~otonom_trader.local_exchange.binance.LocalBinanceExchange`,
:class:`~otonom_trader.local_exchange.bybit.LocalBybitExchange`) turns one parsed
:class:`LocalRequest` into one :class:`LocalReply`. Faults are applied here, around the
subclass, so they behave the same on every endpoint.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from otonom_trader.local_exchange.faults import Fault, FaultKind, FaultPlan

#: A clock returning an aware UTC datetime; injected so tests can move time without sleeping.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock (aware UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class LocalRequest:
    """One HTTP request as the exchange sees it.

    ``raw_query`` and ``body`` are kept byte-exact (as text) because signatures are computed
    over them; ``params`` merges the decoded query and form body (JSON bodies stay in ``body``).
    """

    method: str
    path: str
    raw_query: str
    body: str
    headers: dict[str, str]
    params: dict[str, str]


@dataclass
class LocalReply:
    """Status, JSON-able payload and extra headers of one answer."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    #: Send ``payload`` as-is (a ``str``) with this content type instead of JSON.
    content_type: str | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One entry of :attr:`LocalExchangeServer.requests` (what reached the server)."""

    method: str
    path: str
    params: dict[str, str]
    at: datetime


class _ExchangeHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server with a venue's backlog: socketserver's default of 5 pending
    connections drops a burst of 16 clients connecting at once (one per order in flight) on a
    loaded machine, which no real exchange does."""

    request_queue_size = 128


class LocalExchangeServer(ABC):
    """Base of the local exchanges: start/stop, context manager, request log, faults.

    ``start()`` binds ``host:port`` (port 0 picks a free port) and serves in a daemon thread;
    ``base_url`` is then ``http://127.0.0.1:PORT``. ``requests`` lists every request that
    reached the server (method, path, decoded params), so a test can prove a client never
    called anything it should not have.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, clock: Clock = utc_now) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.faults = FaultPlan()
        self.requests: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: Seconds added before every answer (a venue across the internet; requests in flight
        #: at once wait in parallel, as they do on a real network).
        self.latency_s = 0.0
        #: Request weight charged since start, by the venue's published table (see
        #: ``request_weight``), and the current minute's count the weight header reports.
        self.weight_total = 0
        self._weight_minute = (0, 0)

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        """Bind and serve in a background thread; returns ``self``."""
        if self._httpd is not None:
            return self
        handler = _make_handler(self)
        httpd = _ExchangeHTTPServer((self.host, self.port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            # The poll interval bounds how long stop() waits; 10 ms keeps fixtures cheap.
            kwargs={"poll_interval": 0.01},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() first")
        return f"http://{self.host}:{self.port}"

    # ----------------------------------------------------------------------------- faults
    def inject_fault(
        self,
        kind: str,
        count: int = 1,
        path: str | None = None,
        method: str | None = None,
        seconds: float = 0.0,
        execute: bool = False,
        patch: dict[str, Any] | None = None,
    ) -> Fault:
        """Arm a fault for the next ``count`` requests matching ``path``/``method``.

        See :mod:`otonom_trader.local_exchange.faults` for the kinds; ``execute=True`` makes a
        5xx / ``code_-1007`` fault run the request before answering with the error; ``patch``
        is what a ``bad_reply`` changes in the reply.
        """
        return self.faults.inject(
            kind,
            count=count,
            path=path,
            method=method,
            seconds=seconds,
            execute=execute,
            patch=patch,
        )

    def request_paths(self) -> list[str]:
        """``"METHOD /path"`` of every request received so far, in order."""
        with self._log_lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    def charge(self, request: LocalRequest) -> int:
        """Count ``request``'s weight; return the weight counted in its minute so far."""
        weight = self.request_weight(request)
        minute = int(self.clock().timestamp() // 60)
        with self._log_lock:
            self.weight_total += weight
            start, used = self._weight_minute
            used = used + weight if start == minute else weight
            self._weight_minute = (minute, used)
        return used

    # ----------------------------------------------------------------------------- subclass API
    #: The reply header that tells the client its used weight (``None``: the venue sends none).
    used_weight_header: str | None = None

    def request_weight(self, request: LocalRequest) -> int:
        """What ``request`` costs on this venue (1 unless the venue publishes weights)."""
        return 1

    @abstractmethod
    def handle(self, request: LocalRequest) -> LocalReply:
        """Answer one request (called on the server's worker threads)."""

    @abstractmethod
    def fault_reply(self, kind: FaultKind) -> LocalReply:
        """The exchange-specific answer of an error-status fault (429, 418, 5xx, -1007)."""

    def _record(self, request: LocalRequest) -> None:
        with self._log_lock:
            self.requests.append(
                RequestRecord(request.method, request.path, dict(request.params), self.clock())
            )


def _make_handler(exchange: LocalExchangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so "close without reply" is unambiguous.
        protocol_version = "HTTP/1.0"
        server_version = "otonom-local-exchange/1"

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve()

        def do_PUT(self) -> None:  # noqa: N802
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            # Silence the default stderr access log: query strings carry signatures and keys.
            return

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            content_type = self.headers.get("Content-Type") or ""
            if body and "json" not in content_type:
                params.update(parse_qsl(body, keep_blank_values=True))
            request = LocalRequest(
                method=self.command,
                path=parts.path,
                raw_query=parts.query,
                body=body,
                headers={k.lower(): v for k, v in self.headers.items()},
                params=params,
            )
            exchange._record(request)
            used = exchange.charge(request)
            if exchange.latency_s > 0:
                time.sleep(exchange.latency_s)
            fault = exchange.faults.take(request.method, request.path)
            if fault is not None:
                if fault.kind is FaultKind.DROP_CONNECTION:
                    self._drop()
                    return
                if fault.kind is FaultKind.DELAY:
                    time.sleep(fault.seconds)
                elif fault.kind is FaultKind.LOST_REPLY:
                    exchange.handle(request)  # the request IS executed
                    self._drop()
                    return
                elif fault.kind is FaultKind.BAD_REPLY:
                    reply = exchange.handle(request)  # the request IS executed ...
                    if isinstance(reply.payload, dict) and fault.patch is not None:
                        for key, value in fault.patch.items():  # ... and answered wrongly
                            if value is None:
                                reply.payload.pop(key, None)
                            else:
                                reply.payload[key] = value
                    self._send(reply)
                    return
                elif fault.kind is FaultKind.SLOW_REPLY:
                    reply = exchange.handle(request)  # the request IS executed ...
                    fault.executed.set()
                    fault.released.wait(fault.seconds)  # ... and its reply is late
                    with contextlib.suppress(OSError):  # the client may be gone (killed)
                        self._send(reply)
                    return
                else:
                    if fault.execute:
                        exchange.handle(request)
                    self._send(exchange.fault_reply(fault.kind))
                    return
            try:
                reply = exchange.handle(request)
            except Exception as exc:  # noqa: BLE001 - a bug must not hang the client
                reply = LocalReply(500, {"code": -1000, "msg": f"internal error: {exc}"})
            if exchange.used_weight_header is not None:
                reply.headers.setdefault(exchange.used_weight_header, str(used))
            self._send(reply)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _send(self, reply: LocalReply) -> None:
            if reply.content_type is not None:
                data = str(reply.payload).encode()
                content_type = reply.content_type
            else:
                data = json.dumps(reply.payload).encode()
                content_type = "application/json;charset=UTF-8"
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                # The client gave up (its timeout was shorter than a delay fault): nothing to do.
                pass

    return Handler
