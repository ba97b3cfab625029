"""``OutboxSender``: delivers the alert outbox on a background thread, off the trading path.

A cycle only writes outbox rows; its health_check then calls :meth:`OutboxSender.kick` and goes
on. The thread runs ``deliver`` (the engine's ``deliver_pending``) once per batch of kicks, so a
mail server that is down or never answers costs the thread its bounded timeouts and costs the
cycle nothing. Rows a pass could not finish stay in the outbox (claimed rows are retried after
their lease), so stopping the process mid-send loses no alert.

    sender = OutboxSender(engine.deliver_pending)
    sender.kick()               # returns at once
    sender.wait_idle(5.0)       # tests and shutdown: wait until the kicks so far are served
    sender.close(5.0)           # stop the thread (waits at most 5 s)
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("otonom_trader.alerts.sender")


class OutboxSender:
    """One daemon thread that runs ``deliver()`` whenever it is kicked (started on first kick).

    ``deliver`` must not raise (``AlertEngine.deliver_pending`` does not); if it does anyway,
    the error is logged and the thread keeps serving kicks.
    """

    def __init__(
        self,
        deliver: Callable[[], Any],
        name: str = "otonom-alert-sender",
        *,
        exit_timeout: float = 0.0,
    ) -> None:
        self._deliver = deliver
        #: At interpreter exit, wait this long for a running pass (a script that calls
        #: ``run_once()`` and ends still gets its alerts out); 0: do not wait.
        self.exit_timeout = exit_timeout
        self._name = name
        self._cond = threading.Condition()
        self._requested = 0
        self._served = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.last_result: Any = None
        self.passes = 0

    def kick(self) -> None:
        """Ask for one delivery pass (coalesced with other pending kicks); never blocks."""
        with self._cond:
            if self._stopping:
                return
            self._requested += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
                if self.exit_timeout > 0:
                    atexit.register(self._at_exit)
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """True while kicks are waiting or a pass is running."""
        with self._cond:
            return self._served < self._requested

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every kick made so far is served; False when ``timeout`` passed first."""
        with self._cond:
            target = self._requested
            return self._cond.wait_for(lambda: self._served >= target, timeout=timeout)

    def close(self, timeout: float) -> bool:
        """Serve what was kicked (waiting at most ``timeout`` seconds), then stop the thread.
        Returns False when a pass was still running at the deadline (its rows stay in the
        outbox and are retried by the next process)."""
        atexit.unregister(self._at_exit)
        idle = self.wait_idle(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and idle:
            thread.join(timeout=1.0)
        return idle

    def _at_exit(self) -> None:
        self.close(self.exit_timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._served < self._requested)
                if self._served >= self._requested:  # stopping with nothing left to serve
                    return
                target = self._requested
            try:
                self.last_result = self._deliver()
            except Exception:  # noqa: BLE001 - the sender must outlive a broken pass
                log.warning("background alert delivery failed", exc_info=True)
            with self._cond:
                self.passes += 1
                self._served = target
                self._cond.notify_all()
