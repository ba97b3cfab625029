"""Reading a user's YAML file safely: size-bounded, nesting-bounded, no duplicate keys.

Every config file a user hands in (a strategy, the guide's ``broker.yaml``) is read through
:func:`read_yaml_file`, so a huge file, a file of 200,000 ``[`` (PyYAML recurses once per level)
or a key given twice is one ``ConfigError`` line naming the file, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from otonom_trader.config.errors import ConfigError

MAX_YAML_BYTES = 1_000_000
MAX_YAML_DEPTH = 32


class _DuplicateKeyError(ValueError):
    """A mapping names the same key twice (PyYAML would silently keep the last one)."""


class _TooDeepError(ValueError):
    """The document nests deeper than ``MAX_YAML_DEPTH``."""


class StrictYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys (a second ``entry:`` must not silently
    replace the first one's rules) and documents nested deeper than ``MAX_YAML_DEPTH``."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooDeepError(
                    f"nested more than {MAX_YAML_DEPTH} levels deep (line {mark.line + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key ([a]: 1); the base class names it
                break
            if repeated:
                line = key_node.start_mark.line + 1
                raise _DuplicateKeyError(f"{key}: appears twice in one mapping (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_file(path: str | Path, what: str, error: type[ConfigError] = ConfigError) -> Any:
    """Parse the YAML file at ``path`` (``what`` names it in errors: ``strategy file``).

    Raises ``error`` (one line starting with the file) when the file is missing, not a regular
    file, unreadable, larger than ``MAX_YAML_BYTES``, not UTF-8, not YAML, nested too deeply or
    repeats a key.
    """
    file = Path(path).expanduser()
    if not file.exists():
        raise error(f"{what} not found: {file}")
    if not file.is_file():
        raise error(f"{file}: {what} must be a regular file")
    try:
        size = file.stat().st_size
        if size > MAX_YAML_BYTES:
            raise error(f"{file}: {what} is {size} bytes; expected at most {MAX_YAML_BYTES}")
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{file}: not a text (UTF-8) file") from None
    except OSError as exc:
        raise error(f"{file}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506 - a SafeLoader subclass
    except (_DuplicateKeyError, _TooDeepError) as exc:
        raise error(f"{file}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{file}: not valid YAML{where}: {problem}") from None
    except RecursionError:  # a YAML construct the depth guard does not see
        raise error(f"{file}: nested too deeply") from None
