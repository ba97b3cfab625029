"""The stages a strategy version passes, in order, and the identity that names a version."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from otonom_trader.config.errors import ConfigError


class Stage(StrEnum):
    """research → paper → shadow → live. A new version (an edited file) starts at research."""

    RESEARCH = "research"
    PAPER = "paper"
    SHADOW = "shadow"
    LIVE = "live"

    @property
    def next(self) -> Stage | None:
        """The stage a passed gate leads to; ``None`` from live."""
        order = list(Stage)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None


def file_sha256(path: str | Path) -> str:
    """SHA-256 of the file's bytes (hex): the same digest the backtest writes as
    ``strategy_hash``. A missing file is one ``ConfigError`` line."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the strategy file {path}: {exc.strerror}") from None
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class StrategyIdentity:
    """Which version of which strategy: its name and version, and the hash of its file."""

    name: str
    version: str
    sha256: str
    path: str

    @classmethod
    def of_file(cls, path: str | Path) -> StrategyIdentity:
        """Load and validate the strategy file, and hash its bytes."""
        from otonom_trader.strategy.model import load_strategy

        strategy = load_strategy(path)
        return cls(strategy.name, strategy.version, file_sha256(path), str(path))

    def describe(self) -> str:
        """``baseline v1.0 (sha256 1a2b3c4d5e6f)``."""
        return f"{self.name} v{self.version} (sha256 {self.sha256[:12]})"
