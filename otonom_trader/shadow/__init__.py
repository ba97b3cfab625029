"""SHADOW mode bookkeeping: the ledger pairing paper and broker fills, and its reports.

* :mod:`otonom_trader.shadow.ledger` — :class:`ShadowLeg`, :class:`ShadowLedger` (one row per
  intent, slippage in bps against the signal price, positive = worse).
* :mod:`otonom_trader.shadow.report` — divergence statistics, tables, the equity PNG and the
  per-run Prefect markdown artifact.
* :mod:`otonom_trader.shadow.cli` — the ``shadow-report`` command.
"""

from otonom_trader.shadow.ledger import (
    LegStatus,
    ShadowLedger,
    ShadowLeg,
    ShadowPairView,
    slippage_bps,
)
from otonom_trader.shadow.report import (
    BookStats,
    ShadowReport,
    build_report,
    plot_equity_curves,
    publish_run_artifact,
    render_report,
    run_markdown,
)

__all__ = [
    "BookStats",
    "LegStatus",
    "ShadowLedger",
    "ShadowLeg",
    "ShadowPairView",
    "ShadowReport",
    "build_report",
    "plot_equity_curves",
    "publish_run_artifact",
    "render_report",
    "run_markdown",
    "slippage_bps",
]
