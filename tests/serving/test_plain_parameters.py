"""The daemon flow stores its plain-JSON parameters exactly as Prefect's own encoder would."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from prefect import flow

from otonom_trader.serving.plain_parameters import is_plain_json, plain_parameters_flow


def _body(overrides: Any = None) -> None:
    return None


PLAIN = [
    {"overrides": []},
    {"overrides": ["mode=shadow", "guardrails=conservative", "bot.name=alpha-1"]},
    {"overrides": ["strategy.params={fast: 5, slow: 20}", "x=ünïcødé", ""]},
    {"overrides": {"nested": [1, 2.5, None, True, {"k": "v"}]}},
]


@pytest.mark.parametrize("parameters", PLAIN)
def test_plain_parameters_are_stored_as_prefects_encoder_stores_them(
    parameters: dict[str, Any],
) -> None:
    ours = plain_parameters_flow(name="ours")(_body)
    prefects = flow(name="prefects")(_body)

    assert is_plain_json(parameters["overrides"])
    assert ours.serialize_parameters(parameters) == prefects.serialize_parameters(parameters)


def test_other_values_fall_back_to_prefects_encoder() -> None:
    ours = plain_parameters_flow(name="ours")(_body)
    prefects = flow(name="prefects")(_body)
    parameters = {"overrides": [datetime(2026, 11, 30, tzinfo=UTC), Decimal("1.5")]}

    assert not is_plain_json(parameters["overrides"])
    assert ours.serialize_parameters(parameters) == prefects.serialize_parameters(parameters)


def test_stored_parameters_are_a_copy() -> None:
    ours = plain_parameters_flow(name="ours")(_body)
    overrides = ["mode=paper"]

    stored = ours.serialize_parameters({"overrides": overrides})
    overrides.append("mode=live")

    assert stored == {"overrides": ["mode=paper"]}
