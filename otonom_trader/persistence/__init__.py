"""Persistence: SQLAlchemy models, Alembic migrations, the ``Database`` handle."""

from otonom_trader.persistence.database import Database, DatabaseError, resolve_url
from otonom_trader.persistence.models import (
    Base,
    BookAccount,
    BookPosition,
    DaemonRun,
    FillRecord,
    OrderRecord,
    PortfolioSnapshot,
    utc_now,
)

__all__ = [
    "Base",
    "BookAccount",
    "BookPosition",
    "DaemonRun",
    "Database",
    "DatabaseError",
    "FillRecord",
    "OrderRecord",
    "PortfolioSnapshot",
    "resolve_url",
    "utc_now",
]
