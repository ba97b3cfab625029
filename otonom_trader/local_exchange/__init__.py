"""Local stand-ins of real exchanges, served over HTTP on 127.0.0.1.

ccxt's real ``ccxt.binance`` / ``ccxt.bybit`` classes talk to these servers once routed with
:func:`otonom_trader.broker.ccxt_routing.route_ccxt_to`, so tests and offline drills exercise
signatures, exchange filters, error codes and injected faults over the wire.

Run one in the foreground: ``python -m otonom_trader.local_exchange binance --port 8765``.
"""

from otonom_trader.local_exchange.binance import LocalBinanceExchange, LocalFill, LocalOrder
from otonom_trader.local_exchange.bybit import LocalBybitExchange
from otonom_trader.local_exchange.faults import FaultKind
from otonom_trader.local_exchange.server import LocalExchangeServer, RequestRecord

__all__ = [
    "FaultKind",
    "LocalBinanceExchange",
    "LocalBybitExchange",
    "LocalExchangeServer",
    "LocalFill",
    "LocalOrder",
    "RequestRecord",
]
