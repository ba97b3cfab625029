"""Where otonom_trader keeps its data: ``$OTONOM_HOME``, default ``~/.otonom_trader``.

A module of its own with no imports from the package, so every layer can ask for it.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = "~/.otonom_trader"


def otonom_home() -> Path:
    """The data directory: ``$OTONOM_HOME`` or ``~/.otonom_trader``."""
    return Path(os.environ.get("OTONOM_HOME") or DEFAULT_HOME).expanduser()
