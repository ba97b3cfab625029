"""Internal errors (bugs, not user mistakes): the traceback goes to a log file, the terminal
gets one line.

``$OTONOM_HOME/logs/otonom-trader.log`` collects the tracebacks of ``otonom-trader`` and of
``python flows/daemon.py``. A user mistake never gets here: it is refused up front with one line
and exit status 2, and writes nothing (``otonom_trader.config.validation``).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from otonom_trader.home import otonom_home


def log_path() -> Path:
    """``$OTONOM_HOME/logs/otonom-trader.log``."""
    return otonom_home() / "logs" / "otonom-trader.log"


def record_traceback(text: str) -> str:
    """Append ``text`` (a formatted traceback) to the log file; return where it went."""
    target = log_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {datetime.now(UTC).isoformat()} {' '.join(sys.argv)}\n{text}")
            if not text.endswith("\n"):
                handle.write("\n")
    except OSError:
        return "nowhere: the log file could not be written"
    return str(target)


class TracebackToLogFile(logging.Formatter):
    """Wraps a console handler's formatter: a record's traceback is written to the log file and
    the console shows the message alone, ending ``(traceback in …)``. The record itself is left
    as it is, so other handlers (Prefect's API log) still get the traceback."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_info:
            return self.inner.format(record)
        where = record_traceback(logging.Formatter().formatException(record.exc_info))
        short = logging.makeLogRecord(record.__dict__)
        short.exc_info, short.exc_text, short.stack_info = None, None, None
        return f"{self.inner.format(short)} (traceback in {where})"


def keep_tracebacks_off_the_console(logger_names: tuple[str, ...] = ("", "uvicorn")) -> None:
    """Give every stream handler of these loggers (the root logger's console handler is where
    Prefect's run and server logs are printed) a ``TracebackToLogFile`` formatter."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler.formatter, TracebackToLogFile
            ):
                handler.setFormatter(TracebackToLogFile(handler.formatter or logging.Formatter()))
