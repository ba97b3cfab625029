"""Opening an up-to-date database reads the migration scripts' declarations, not Alembic: the
reading must agree with Alembic's, and Alembic must stay unimported until a migration runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from otonom_trader.persistence.database import (
    MIGRATIONS_DIR,
    Database,
    _alembic_config,
    _declared_revisions,
)


def test_declared_revisions_when_read_then_same_as_alembics_reading() -> None:
    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))

    declared = _declared_revisions(MIGRATIONS_DIR / "versions")

    assert declared is not None
    revisions, heads = declared
    assert revisions == {rev.revision for rev in script.walk_revisions()}
    assert heads == set(script.get_heads())


def test_declared_revisions_when_a_script_declares_otherwise_then_left_to_alembic(
    tmp_path: Path,
) -> None:
    (tmp_path / "0001_a.py").write_text('revision: str = "a"\ndown_revision = None\n')

    assert _declared_revisions(tmp_path) is None


def test_open_when_database_is_up_to_date_then_alembic_is_not_imported(tmp_path: Path) -> None:
    path = tmp_path / "trader.db"
    Database(path).dispose()  # created and migrated here
    code = (
        "import sys; from otonom_trader.persistence.database import Database; "
        f"db = Database({str(path)!r}); db.dispose(); print('alembic' in sys.modules)"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
