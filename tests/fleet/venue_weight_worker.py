"""One fleet worker's process for test_venue_rate_limit: spends request weight on a venue as
fast as its budget lets it, inside a Prefect flow run with the fleet's shared venue budget on,
and prints what it reserved.

    python venue_weight_worker.py BASE_URL READY_FILE GO_FILE SECONDS
"""

import json
import sys
import time
from pathlib import Path

from prefect import flow

from otonom_trader.fleet.venue_limit import share_venue_budgets
from otonom_trader.market.exchange_source import public_client


@flow(name="venue-weight-worker")
def spend(base_url: str, ready: str, go: str, seconds: float) -> dict[str, int]:
    share_venue_budgets(True)
    client = public_client("binance", base_url=base_url)
    shared = client.otonom_request_budget.upstream
    client.load_markets()  # its weight counts too, but before the race
    Path(ready).touch()
    while not Path(go).exists():  # both workers start spending together
        time.sleep(0.05)
    requests = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        client.fetch_ticker("BTC/USDT")
        requests += 1
    return {"requests": requests, "reserved": shared.reserved, "reservations": shared.reservations}


if __name__ == "__main__":
    print(json.dumps(spend(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))))
