"""The cycle's schedule: shortly after each candle of the strategy's timeframe closes.

Exchange candles close on the UTC clock (1h at each full hour, 4h at 00, 04, 08 … UTC, 1d at
midnight, 1w on Monday at midnight), so the cycle runs ``OFFSET_MINUTES`` later, when the
exchange has published the closed candle::

    1m → "* * * * *"       5m → "1-59/5 * * * *"   15m → "1-59/15 * * * *"
    1h → "1 * * * *"       4h → "1 */4 * * *"      1d  → "1 0 * * *"     1w → "1 0 * * 1"

A timeframe that does not divide the hour or the day evenly has no such cron; it runs on an
interval of one candle instead, anchored one offset after the Unix epoch (as exchanges anchor
those candles). Cron has minutes as its finest step, so the offset is one minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Minutes after the candle's close: the exchange has the closed candle by then.
OFFSET_MINUTES = 1


@dataclass(frozen=True)
class CycleSchedule:
    """Either a ``cron`` (UTC) or an ``interval`` with its ``anchor``."""

    cron: str | None = None
    interval: timedelta | None = None
    anchor: datetime | None = None

    def describe(self) -> str:
        """One line for the terminal (``cron '1 * * * *' (UTC)``)."""
        if self.cron is not None:
            return f"cron '{self.cron}' (UTC)"
        return f"every {self.interval} from {self.anchor:%Y-%m-%d %H:%M:%S} UTC"


def cycle_schedule(timeframe: str) -> CycleSchedule:
    """The schedule of a cycle per candle of ``timeframe`` (``"1h"``)."""
    from otonom_trader.market.candles import timeframe_seconds

    seconds = timeframe_seconds(timeframe)
    minutes, rest = divmod(seconds, 60)
    if rest == 0 and minutes == 1:
        return CycleSchedule(cron="* * * * *")
    if rest == 0 and minutes < 60 and 60 % minutes == 0:
        return CycleSchedule(cron=f"{OFFSET_MINUTES}-59/{minutes} * * * *")
    hours, rest = divmod(seconds, 3600)
    if rest == 0 and hours == 1:
        return CycleSchedule(cron=f"{OFFSET_MINUTES} * * * *")
    if rest == 0 and hours < 24 and 24 % hours == 0:
        return CycleSchedule(cron=f"{OFFSET_MINUTES} */{hours} * * *")
    if seconds == 86_400:
        return CycleSchedule(cron=f"{OFFSET_MINUTES} 0 * * *")
    if seconds == 7 * 86_400:
        return CycleSchedule(cron=f"{OFFSET_MINUTES} 0 * * 1")
    return interval_schedule(seconds)


def interval_schedule(seconds: float) -> CycleSchedule:
    """Every ``seconds``, anchored ``OFFSET_MINUTES`` after the Unix epoch."""
    anchor = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=OFFSET_MINUTES)
    return CycleSchedule(interval=timedelta(seconds=seconds), anchor=anchor)
