"""A cache of composed configurations: a cycle's start without Hydra's import and composition.

Composing ``conf/`` with Hydra (importing it, reading every group's files, merging them into the
schema) costs about 0.15 s of each cycle's start (``bench/bench_cold_start.py``) and gives the
same result every time the same overrides meet the same files and code. So a composition that
passed the whole validation is kept, unresolved (``${oc.env:…}`` stays an interpolation, never a
secret), under ``$OTONOM_HOME/cache/config/`` by the cycle that ran with it, and read back by
the next run with the same key.

The key is a hash of the overrides, the config directory, the size and modification time of
every file under it, of every module of the ``otonom_trader`` package (the schema and its
defaults are code) and of Hydra's and OmegaConf's own modules: a change to any of them is a miss,
and a miss composes with Hydra as before. Only compositions of cycles that passed validation and
started are written, so a bad input (or a check alone) writes nothing; an unreadable or damaged
entry is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from otonom_trader.home import otonom_home

#: Bumped when the cache's format changes.
FORMAT = 1
#: Entries kept; the oldest beyond this are removed when one is written.
MAX_ENTRIES = 64

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """``$OTONOM_HOME/cache/config``."""
    return otonom_home() / "cache" / "config"


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _tree_stamps(root: Path, pattern: str) -> list[str]:
    return [f"{p.relative_to(root)}={_stamp(p)}" for p in sorted(root.rglob(pattern))]


def _library_stamps() -> list[str]:
    stamps = []
    for name in ("hydra", "omegaconf"):
        spec = importlib.util.find_spec(name)  # finds the package without importing it
        origin = Path(spec.origin) if spec and spec.origin else None
        stamps.append(f"{name}={_stamp(origin) if origin else 'absent'}")
    return stamps


def composition_key(overrides: list[str], config_dir: Path) -> str:
    """The hash that names a composition (see the module docstring for what it covers)."""
    parts = [
        f"format={FORMAT}",
        json.dumps(list(overrides)),
        str(config_dir),
        *_tree_stamps(config_dir, "*.yaml"),
        *_tree_stamps(PACKAGE_DIR, "*.py"),
        *_library_stamps(),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def load_composition(key: str) -> DictConfig | None:
    """The composition stored under ``key`` merged into the schema, or ``None`` on a miss."""
    from otonom_trader.config.schema import AppConfig

    path = cache_dir() / f"{key}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
        stored = OmegaConf.create(text)
        raw = OmegaConf.merge(OmegaConf.structured(AppConfig), stored)
    except Exception:  # noqa: BLE001 - missing, unreadable or damaged: compose instead
        return None
    if not isinstance(raw, DictConfig):
        return None
    OmegaConf.set_struct(raw, True)  # as Hydra returns it: a typo'd key is an error
    return raw


def store_composition(key: str, raw: DictConfig) -> None:
    """Keep ``raw`` (unresolved) under ``key``; written atomically, the oldest entries pruned.
    A cache that cannot be written is skipped silently: the next run composes again."""
    directory = cache_dir()
    if (directory / f"{key}.yaml").exists():
        return  # stored by an earlier run: the same key is the same composition
    try:
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / f".{key}.{os.getpid()}.tmp"
        temporary.write_text(OmegaConf.to_yaml(raw, resolve=False), encoding="utf-8")
        os.replace(temporary, directory / f"{key}.yaml")
        _prune(directory)
    except OSError:
        return


def remember_composition(
    overrides: list[str], raw: DictConfig, config_dir: Path | None = None
) -> None:
    """Cache ``raw``, the validated composition of ``overrides``, for the next cycle's start.

    Called by a cycle that passed validation and started (its home exists by then), never by
    validation itself: checking an input writes nothing."""
    from otonom_trader.config.compose import CONFIG_DIR

    store_composition(composition_key(list(overrides), (config_dir or CONFIG_DIR).resolve()), raw)


def _prune(directory: Path) -> None:
    entries = sorted(directory.glob("*.yaml"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for stale in entries[MAX_ENTRIES:]:
        stale.unlink(missing_ok=True)
