"""``${VAR}`` and ``${VAR:-default}`` substitution in YAML string values (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lib.errors import ConfigError

_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Return ``value`` with every ``${VAR}`` / ``${VAR:-default}`` replaced, recursively.

    An unset variable without a default is a :class:`ConfigError` naming the variable and the YAML path.
    Substituted values stay strings (a password ``0123`` stays ``"0123"``); the typed readers of the
    loader accept numeric strings where a number is expected (``port: ${PG_PORT}``).
    """
    if isinstance(value, dict):
        return {k: substitute(v, env, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(path, f"environment variable {name} is not set and has no default (use ${{{name}:-default}})")

    return _PATTERN.sub(replace, value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
