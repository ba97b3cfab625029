"""Imports every table module so ``metadata`` holds the whole schema (for Alembic checks)."""

from otonom_trader.persistence import (
    account_models,  # noqa: F401
    alert_models,  # noqa: F401
    guardrail_models,  # noqa: F401
    models,
    promotion_models,  # noqa: F401
    shadow_models,  # noqa: F401
)
from otonom_trader.persistence.models import Base

metadata = Base.metadata

__all__ = ["metadata", "models"]
