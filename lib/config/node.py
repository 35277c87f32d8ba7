"""One mapping of the YAML document with its path: typed getters whose errors name the YAML path."""

from __future__ import annotations

import re
from typing import Any

from lib.errors import ConfigError


class Node:
    """A mapping in the YAML document with its path; remembers which keys were read."""

    def __init__(self, value: Any, path: str) -> None:
        if value is not None and not isinstance(value, dict):
            raise ConfigError(path or "<root>", f"expected a mapping, got {show(value)}")
        self.value: dict[str, Any] | None = value
        self.path = path
        self._seen: set[str] = set()

    def names(self) -> list[str]:
        return [str(k) for k in (self.value or {})]

    def _get(self, key: str, required: bool) -> Any:
        self._seen.add(key)
        value = (self.value or {}).get(key)
        if value is None and required:
            raise ConfigError(self._at(key), "is required")
        return value

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def child(self, key: str, required: bool = False) -> Node:
        return Node(self._get(key, required), self._at(key))

    def str(self, key: str, default: str | None = None, required: bool = False) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigError(self._at(key), f"expected a string, got {show(value)}")
        return str(value)

    def int(self, key: str, default: int | None = None, minimum: int | None = None) -> Any:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self._at(key), f"expected an integer, got {show(value)}")
        if minimum is not None and value < minimum:
            raise ConfigError(self._at(key), f"expected an integer >= {minimum}, got {value}")
        return value

    def float(self, key: str, default: float) -> float:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, str) and re.fullmatch(r"[0-9]+(\.[0-9]*)?", value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(self._at(key), f"expected a non-negative number, got {show(value)}")
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is None:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(self._at(key), f"expected true or false, got {show(value)}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None, required: bool = False) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if value not in allowed:
            raise ConfigError(self._at(key), f"expected one of {', '.join(allowed)}, got {show(value)}")
        return value

    def str_list(self, key: str, default: list[str] | None = None, required: bool = False) -> Any:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self._at(key), f"expected a list of strings, got {show(value)}")
        return value

    def scalar(self, key: str) -> Any:
        """A number or a string (dates and timestamps as ISO text); None when absent."""
        value = self._get(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
            raise ConfigError(self._at(key), f"expected a number or a string, got {show(value)}")
        return value

    def scalar_list(self, key: str) -> Any:
        value = self._get(key, False)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, (int, float, str, bool)) for v in value):
            raise ConfigError(self._at(key), f"expected a list of plain values, got {show(value)}")
        return value

    def str_map(self, key: str) -> dict[str, str]:
        value = self._get(key, False)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
            raise ConfigError(self._at(key), "expected a mapping of names to plain values")
        return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}

    def done(self) -> None:
        """Reject keys nobody read: they are typos or unsupported settings."""
        for key in self.names():
            if key not in self._seen:
                raise ConfigError(self._at(key), "unknown key")


def show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
