"""Local mail servers that speak real SMTP, for tests and drills: ``LocalSMTPServer`` (aiosmtpd
on 127.0.0.1, optionally requiring a login; it can be stopped and started again) and
``SilentServer`` (accepts connections and never answers, the mail server that hangs).

aiosmtpd is a test dependency: this module is imported by tests, never by the daemon.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class ReceivedMail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())


@dataclass
class LocalSMTPServer:
    """aiosmtpd on a fixed 127.0.0.1 port that can be stopped and started again (an outage).

    With ``user``/``password`` it requires AUTH LOGIN/PLAIN over plain SMTP
    (``auth_require_tls=False``: aiosmtpd refuses AUTH without TLS otherwise)."""

    port: int
    user: str | None = None
    password: str | None = None
    messages: list[ReceivedMail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    _controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if user == self.user and password == self.password:
                self.logins.append(user)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never says a word: an SMTP
    server hung after ``accept`` (the client waits for a banner that never comes).

    ``accepted`` counts connections; ``stop()`` closes the listener and every held connection,
    freeing the port for a real server."""

    port: int
    accepted: int = 0
    _listener: socket.socket | None = None
    _held: list[socket.socket] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            self.accepted += 1
            self._held.append(conn)

    def stop(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the accept() blocked in the thread; close() alone may not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for conn in self._held:
            conn.close()
        self._held.clear()
