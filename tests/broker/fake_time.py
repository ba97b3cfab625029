"""An injected clock whose ``sleep`` moves it: pacing tests wait for nothing real."""

from __future__ import annotations


class FakeTime:
    """``monotonic``/``clock`` read ``now``; ``sleep`` records the wait and moves ``now``."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    clock = monotonic

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
