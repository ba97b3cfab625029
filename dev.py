#!/usr/bin/env python3
"""The two README commands: set up the pinned environment, then run the job or the tests.

    python3 dev.py run  [hydra overrides...]   # one trading cycle (PAPER, offline, by default)
    python3 dev.py test [pytest args...]       # the whole test suite
    python3 dev.py backtest [backtest args...] # a backtest (default: baseline, 90 days, offline)

Each command creates (or reuses) ``.venv`` from ``requirements.lock`` — every dependency pinned
by version and hash — and installs this project into it without resolving anything again, so
every machine runs the same versions. The environment is rebuilt only when the lock or
``pyproject.toml`` changes (a stamp file records their hash). Only the Python standard library is
used here, because this script runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("OTONOM_VENV", ROOT / ".venv"))
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".otonom-lock-stamp"
#: ``python3 dev.py backtest`` without arguments: the baseline over 90 days of synthetic candles.
QUICK_BACKTEST = (
    "--strategy",
    "strategies/baseline_v1.0.yaml",
    "--from",
    "2025-01-01",
    "--to",
    "2025-04-01",
    "--out",
    "backtest-out",
)


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _run(cmd: list[str | os.PathLike[str]], **kwargs: object) -> None:
    result = subprocess.run([str(c) for c in cmd], **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_environment() -> Path:
    """Create or refresh ``.venv`` from the lock; return its Python interpreter."""
    python = _venv_python()
    wanted = _lock_digest()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return python
    print(f"[dev] setting up {VENV} from {LOCK.name} (pinned, hash-checked) ...", flush=True)
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    _run([*pip, "install", "--require-hashes", "--no-deps", "-r", LOCK])
    # The project itself: no dependency resolution (all of them came from the lock) and no
    # build isolation (setuptools is pinned in the lock too, so nothing unpinned is fetched).
    _run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", ROOT])
    STAMP.write_text(wanted + "\n")
    print("[dev] environment ready", flush=True)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "setup", "backtest"}:
        print(__doc__.strip())
        return 2
    command, rest = argv[0], argv[1:]
    python = ensure_environment()
    env = dict(os.environ)
    # Offline by default: no telemetry to Prefect Cloud, no update checks.
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    if command == "setup":
        return 0
    if command == "backtest":
        args = rest or [*QUICK_BACKTEST]
        cli = [str(python), "-m", "otonom_trader.cli", "backtest", *args]
        return subprocess.call(cli, cwd=ROOT, env=env)
    if command == "run":
        return subprocess.call([str(python), str(ROOT / "flows" / "daemon.py"), *rest], env=env)
    return subprocess.call([str(python), "-m", "pytest", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
