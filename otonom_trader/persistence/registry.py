"""Imports every table module so ``metadata`` holds the whole schema (for Alembic checks)."""

from otonom_trader.persistence import models
from otonom_trader.persistence import alert_models  # noqa: F401
from otonom_trader.persistence import shadow_models  # noqa: F401
from otonom_trader.persistence import guardrail_models  # noqa: F401
from otonom_trader.persistence.models import Base

metadata = Base.metadata

__all__ = ["metadata", "models"]
