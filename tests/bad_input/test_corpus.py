"""Every case of the bad-input corpus, in-process through the commands' own ``main``.

Each case must exit 2 with one line on stderr naming the culprit and what was expected, print no
traceback, add no row to the database a previous run left in the home, and leave every file and
directory as it was (nothing created, nothing written, not even a journal).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from otonom_trader.cli import main as cli_main
from otonom_trader.daemon import TradingDaemon

from .conftest import Workspace, assert_one_line_refusal, home_rows
from .corpus import ALL_CASES, Case


def _must_not_run(what: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        pytest.fail(f"{what} was reached: the input was not refused up front")

    return refuse


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.id)
def test_bad_input_is_refused_with_one_line_and_exit_2_and_nothing_written(
    case: Case,
    make_workspace: Callable[[Case], Workspace],
    daemon_flow: ModuleType,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: reaching the flow or a cycle at all is a failure (validation let it through)
    monkeypatch.setattr(daemon_flow, "daemon", _must_not_run("the Prefect flow"))
    monkeypatch.setattr(TradingDaemon, "run_once", _must_not_run("TradingDaemon.run_once"))
    ws = make_workspace(case)
    before = ws.snapshot()
    rows_before = home_rows(ws.home)
    capsys.readouterr()

    # Act
    argv = ws.argv(case)
    code = daemon_flow.main(argv) if case.entry == "flow" else cli_main(argv)

    # Assert
    out, err = capsys.readouterr()
    assert_one_line_refusal(case, code, out, err)
    assert ws.snapshot() == before
    assert home_rows(ws.home) == rows_before == dict.fromkeys(rows_before, 0)
    for path in case.outside:
        assert not Path(path).exists(), f"{path} was created"


def test_corpus_covers_every_category_with_150_cases_or_more() -> None:
    categories = {case.category for case in ALL_CASES}

    assert len(ALL_CASES) >= 150
    assert categories == {"overrides", "strategy", "broker", "alerts", "cli", "csv", "database"}
