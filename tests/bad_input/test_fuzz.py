"""Hypothesis over strategy files and overrides: whatever the input, the validation entry of the
command line (``check_argv`` of flows/daemon.py, which never starts the flow) either accepts it —
and then every value is finite and in range — or refuses it with one line and status 2. No other
exception, no traceback, no file written.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otonom_trader.config.validation import BOUNDS, compose_validated

from .corpus import BASELINE

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values that have broken something before: specials, huge, negative, wrong types, deep nesting.
NASTY_NUMBERS = st.sampled_from(
    [float("inf"), float("-inf"), float("nan"), 1e308, 1e300, -1e300, 10**30, -1, 0, 0.5, 1e-300]
)
SCALARS = st.one_of(
    NASTY_NUMBERS,
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.booleans(),
    st.none(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, (*prefix, k))] + [prefix]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, (*prefix, i))] + [prefix]
    return [prefix]


STRATEGY_PATHS = [p for p in _leaf_paths(BASELINE) if p]


@st.composite
def mutated_strategies(draw: st.DrawFn) -> str:
    """The baseline with one to three places replaced by a nasty value, as YAML text."""
    data = copy.deepcopy(BASELINE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(STRATEGY_PATHS))
        node: Any = data
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced a parent
    return yaml.safe_dump(data, allow_unicode=True)


KEYS = [
    "paper.initial_cash",
    "paper.slippage_bps",
    "guardrails.max_consecutive_losses",
    "guardrails.max_drawdown_pct",
    "guardrails.consecutive_loss_cooldown_hours",
    "data.history_bars",
    "data.annual_volatility_pct",
    "data.seed",
    "broker.sim.latency_ms_mean",
    "broker.sim.reject_probability",
    "broker.timeout_ms",
    "broker.kind",
    "broker.base_url",
    "alerts.max_attempts",
    "alerts.timeout_seconds",
    "alerts.urls",
    "mode",
    "mode.name",
    "db.busy_timeout_ms",
    "strategy.path",
    "broker.api_key",
    "alerts.email.password",
]
OVERRIDE_VALUES = st.one_of(
    NASTY_NUMBERS.map(str),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats().map(repr),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
)
OVERRIDES = st.lists(
    st.tuples(st.sampled_from(KEYS), OVERRIDE_VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
    min_size=1,
    max_size=3,
)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A fresh working directory and home per example (the home must stay absent)."""
    previous = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(previous)


def _check(flow: ModuleType, argv: list[str], root: Path) -> None:
    before = sorted(p.name for p in root.iterdir())
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        status, _ = flow.check_argv(argv)
    text = stderr.getvalue()
    assert "Traceback" not in text, text
    if status is None:
        assert text == ""
        _, app = compose_validated(argv)
        _assert_finite_and_bounded(app)
    else:
        assert status == 2
        assert len(text.splitlines()) == 1, text
    assert sorted(p.name for p in root.iterdir()) == before  # nothing created
    assert not (root / "home").exists()


def _assert_finite_and_bounded(node: Any, path: str = "") -> None:
    import dataclasses

    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        key = f"{path}{field.name}"
        if dataclasses.is_dataclass(value):
            _assert_finite_and_bounded(value, f"{key}.")
        elif isinstance(value, float):
            assert math.isfinite(value), key
        if key in BOUNDS and isinstance(value, int | float) and not isinstance(value, bool):
            assert BOUNDS[key][0] <= value <= BOUNDS[key][1], key


@pytest.fixture
def fuzz_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "never-created-home"
    monkeypatch.setenv("OTONOM_HOME", str(home))
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "OTONOM_CONFIRM_PRODUCTION"):
        monkeypatch.delenv(name, raising=False)
    return home


@FUZZ
@given(text=mutated_strategies())
def test_any_strategy_file_is_accepted_in_range_or_refused_in_one_line(
    daemon_flow: ModuleType, fuzz_home: Path, text: str
) -> None:
    with _scratch() as root:
        (root / "s.yaml").write_text(text, encoding="utf-8")
        _check(daemon_flow, ["strategy.path=s.yaml", "alerts.enabled=false"], root)
    assert not fuzz_home.exists()


@FUZZ
@given(overrides=OVERRIDES)
def test_any_override_is_accepted_in_range_or_refused_in_one_line(
    daemon_flow: ModuleType, fuzz_home: Path, overrides: list[str]
) -> None:
    with _scratch() as root:
        _check(daemon_flow, overrides, root)
    assert not fuzz_home.exists()


@FUZZ
@given(raw=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_as_a_strategy_file_are_accepted_in_range_or_refused_in_one_line(
    daemon_flow: ModuleType, fuzz_home: Path, raw: bytes
) -> None:
    with _scratch() as root:
        (root / "s.yaml").write_bytes(raw)
        _check(daemon_flow, ["strategy.path=s.yaml"], root)
    assert not fuzz_home.exists()
