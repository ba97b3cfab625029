"""Running the daemon all the time: Prefect's own ``serve`` on a schedule aligned to the
strategy's candles, the watchdog beside it, run names that say what ran, Prefect defaults.

Nothing here is imported by ``otonom_trader`` itself: Prefect is loaded only by what serves.
"""
