"""The cache of composed configurations: the same result as Hydra's, a miss on any change,
nothing written for a refused input."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from otonom_trader.config.compose import CONFIG_DIR, compose_raw, config_hash, to_app_config
from otonom_trader.config.compose_cache import (
    cache_dir,
    composition_key,
    load_composition,
    remember_composition,
)
from otonom_trader.config.errors import ConfigError
from otonom_trader.config.validation import validate_cycle

OVERRIDE_SETS = [
    [],
    ["mode=shadow", "guardrails=conservative"],
    ["guardrails=aggressive", "alerts=email_telegram", "promotion=default"],
    ["db=postgres", "db.url=postgresql+psycopg://u@127.0.0.1:1/x", "execution.io_workers=4"],
    ["paper.initial_cash=2500", "bot.name=alpha-1", "strategy=baseline"],
]


@pytest.mark.parametrize("overrides", OVERRIDE_SETS, ids=lambda o: " ".join(o) or "defaults")
def test_a_cached_composition_equals_hydras(
    overrides: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTONOM_TELEGRAM_BOT_TOKEN", "123456:test-token")
    monkeypatch.setenv("OTONOM_TELEGRAM_CHAT_ID", "42")
    raw, _ = validate_cycle(overrides)
    remember_composition(overrides, raw)  # what a cycle that started does
    key = composition_key(overrides, CONFIG_DIR.resolve())
    cached = load_composition(key)

    assert cached is not None, "a validated composition is stored"
    fresh = compose_raw(overrides)  # no cache key: Hydra composes
    assert OmegaConf.to_yaml(cached, resolve=False) == OmegaConf.to_yaml(fresh, resolve=False)
    assert config_hash(cached) == config_hash(fresh) == config_hash(raw)
    assert to_app_config(cached) == to_app_config(fresh)
    assert OmegaConf.is_struct(cached)


def test_a_second_cycle_start_composes_without_hydra(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys; from otonom_trader.config.validation import validate_cycle; "
        "from otonom_trader.config.compose_cache import remember_composition; "
        "raw, _ = validate_cycle(['mode=shadow']); remember_composition(['mode=shadow'], raw); "
        "print('hydra' in sys.modules)"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]

    assert runs == ["True", "False"]


def test_a_changed_config_file_is_a_miss(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    raw, before = validate_cycle([], config_dir=conf)
    remember_composition([], raw, conf)
    paper = conf / "config.yaml"
    paper.write_text(paper.read_text().replace("initial_cash: 10000.0", "initial_cash: 777.0"))

    raw, after = validate_cycle([], config_dir=conf)
    remember_composition([], raw, conf)

    assert before.paper.initial_cash == 10000.0
    assert after.paper.initial_cash == 777.0
    assert len(list(cache_dir().glob("*.yaml"))) == 2


def test_different_overrides_are_different_entries() -> None:
    for overrides in ([], ["paper.initial_cash=1234"]):
        remember_composition(overrides, validate_cycle(overrides)[0])
    _, paper = validate_cycle([])
    _, cash = validate_cycle(["paper.initial_cash=1234"])

    assert (paper.paper.initial_cash, cash.paper.initial_cash) == (10000.0, 1234.0)
    assert composition_key([], CONFIG_DIR) != composition_key(
        ["paper.initial_cash=1234"], CONFIG_DIR
    )


@pytest.mark.parametrize(
    "overrides",
    [["mode=bogus"], ["paper.initial_cash=-5"], ["strategy.path=/nowhere/strategy.yaml"]],
)
def test_a_refused_input_writes_nothing(overrides: list[str]) -> None:
    with pytest.raises(ConfigError):
        validate_cycle(overrides)

    assert not cache_dir().exists()


def test_a_check_alone_writes_nothing() -> None:
    validate_cycle(["mode=shadow"])

    assert not cache_dir().exists()


def test_a_damaged_entry_is_a_miss_not_an_error() -> None:
    remember_composition([], validate_cycle([])[0])
    (entry,) = cache_dir().glob("*.yaml")
    entry.write_text("paper: [this is: not: the schema")

    _, app = validate_cycle([])

    assert app.paper.initial_cash == 10000.0


def test_an_environment_secret_stays_an_interpolation_in_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTONOM_TELEGRAM_BOT_TOKEN", "123456:SECRET-token-never-on-disk")
    monkeypatch.setenv("OTONOM_TELEGRAM_CHAT_ID", "42")
    remember_composition(["alerts=email_telegram"], validate_cycle(["alerts=email_telegram"])[0])

    text = "".join(p.read_text() for p in cache_dir().glob("*.yaml"))
    assert "SECRET-token" not in text
    assert "oc.env" in text


def test_a_started_cycle_caches_its_composition_and_a_check_does_not() -> None:
    from otonom_trader.daemon import TradingDaemon

    overrides = ["paper.initial_cash=5000"]
    key = composition_key(overrides, CONFIG_DIR.resolve())
    daemon = TradingDaemon(overrides=overrides)
    assert load_composition(key) is None  # composed and checked: nothing written yet

    try:
        daemon.run_once()
    finally:
        daemon.close()

    assert load_composition(key) is not None
