"""A Prefect flow whose parameters are plain JSON, stored without FastAPI's encoder.

Prefect stores a flow run's parameters through FastAPI's ``jsonable_encoder``, and importing
FastAPI costs about 0.1 s of every cycle's start (measured by ``bench/bench_cold_start.py``).
The daemon's only parameter is a list of override strings, already JSON: it is stored as it is.
Any other value still goes through Prefect's own encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect.flows import Flow


def is_plain_json(value: Any) -> bool:
    """True for ``None``, a bool, int, float or str, and lists and string-keyed dicts of them."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(is_plain_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain_json(v) for k, v in value.items())
    return False


def _copied(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_copied(item) for item in value]
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    return value


class PlainParametersFlow(Flow[Any, Any]):
    """``prefect.flows.Flow`` that stores plain-JSON parameters as they are."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if all(is_plain_json(value) for value in parameters.values()):
            return {key: _copied(value) for key, value in parameters.items()}
        return super().serialize_parameters(parameters)


def plain_parameters_flow(**options: Any) -> Callable[[Callable[..., Any]], PlainParametersFlow]:
    """``@flow(**options)`` building a ``PlainParametersFlow``."""

    def build(fn: Callable[..., Any]) -> PlainParametersFlow:
        return PlainParametersFlow(fn=fn, **options)

    return build
