"""Running one corpus case: its files in a fresh working directory, a home whose database a
previous run left behind, and a snapshot of both taken before and compared after."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from otonom_trader.config.compose import PROJECT_ROOT

from .corpus import Case, migrated

# Rows a refused input must never add.
WRITTEN_TABLES = ("daemon_runs", "orders", "fills", "portfolio_snapshots", "shadow_pairs")


@dataclass
class Workspace:
    """The case's working directory (``{ws}``) and its ``OTONOM_HOME``."""

    root: Path
    work: Path
    home: Path

    def expand(self, text: str) -> str:
        return text.replace("{ws}", str(self.work))

    def argv(self, case: Case) -> list[str]:
        return [self.expand(arg) for arg in case.argv]

    def snapshot(self) -> dict[str, str]:
        """Every file and directory under the case's root, with each file's hash."""
        tree: dict[str, str] = {}
        for path in sorted(self.root.rglob("*")):
            key = str(path.relative_to(self.root))
            if path.is_dir():
                tree[key] = "<dir>"
            else:
                tree[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        return tree


def home_rows(home: Path) -> dict[str, int]:
    """Row counts of the written tables in the home database (read-only, immutable)."""
    uri = f"file:{home / 'otonom.db'}?immutable=1"
    conn = sqlite3.connect(uri, uri=True)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in WRITTEN_TABLES}
    finally:
        conn.close()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty database: what the home holds before each case."""
    path = tmp_path_factory.mktemp("template") / "otonom.db"
    migrated(path)
    return path


@pytest.fixture
def make_workspace(
    tmp_path: Path, template_db: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[Case, bool], Workspace]:
    """Lay out a case: its files in ``work/`` (the working directory); ``home/otonom.db`` a
    copy of the template (or no home at all with ``fresh_home``); its environment."""

    def make(case: Case, fresh_home: bool = False) -> Workspace:
        ws = Workspace(tmp_path / "case", tmp_path / "case" / "work", tmp_path / "case" / "home")
        ws.work.mkdir(parents=True)
        if not fresh_home:
            ws.home.mkdir()
            shutil.copy(template_db, ws.home / "otonom.db")
        for name, content in case.files.items():
            target = ws.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(ws.expand(content), encoding="utf-8")
        for leftover in ws.work.rglob("*-wal"):  # fixtures' own journals, not the case's
            leftover.unlink()
        for leftover in ws.work.rglob("*-shm"):
            leftover.unlink()
        monkeypatch.setenv("OTONOM_HOME", str(ws.home))
        for name in (
            "BINANCE_API_KEY",
            "BINANCE_API_SECRET",
            "BINANCE_TESTNET_API_KEY",
            "BINANCE_TESTNET_API_SECRET",
            "OTONOM_CONFIRM_PRODUCTION",
            "OTONOM_DB_URL",
            "OTONOM_CORPUS_UNSET",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in case.env.items():
            monkeypatch.setenv(name, ws.expand(value))
        monkeypatch.chdir(ws.work)
        return ws

    return make


def assert_one_line_refusal(case: Case, code: int, stdout: str, stderr: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr naming the culprit."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert code == 2, f"exit {code}, stderr: {stderr!r}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr: {stderr!r}"
    assert stdout == "", f"stdout: {stdout!r}"
    missing = [text for text in case.expect if text not in lines[0]]
    assert not missing, f"{missing} not in {lines[0]!r}"


@pytest.fixture(scope="session")
def daemon_flow() -> ModuleType:
    """flows/daemon.py (an entry point, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "otonom_flows_daemon_corpus", PROJECT_ROOT / "flows" / "daemon.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
