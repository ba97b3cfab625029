"""The examples in strategies/README.md load, and every indicator the loader knows is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from otonom_trader.strategy.model import INDICATORS, load_strategy

README = Path(__file__).resolve().parents[2] / "strategies" / "README.md"
EXAMPLES = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S)


def test_readme_documents_every_indicator() -> None:
    text = README.read_text()
    for name in INDICATORS:
        assert f"| `{name}` |" in text


@pytest.mark.parametrize("example", EXAMPLES)
def test_readme_example_when_loaded_then_valid(tmp_path: Path, example: str) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(example)
    assert load_strategy(path).entry
