"""Source dialects, chosen by the config's ``type`` from one registry."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from lib.errors import ConfigError

# type -> (module, class): imported on first use, so a job only loads the dialect it runs.
REGISTRY: dict[str, tuple[str, str]] = {
    "postgres": ("lib.dialects.postgres", "PostgresDialect"),
    "oracle": ("lib.dialects.oracle", "OracleDialect"),
    "sqlserver": ("lib.dialects.sqlserver", "SqlServerDialect"),
}


def get_dialect(source_type: str, yaml_path: str = "type") -> Any:
    """The dialect object for ``source_type`` (``postgres`` | ``oracle`` | ``sqlserver``)."""
    entry = REGISTRY.get(source_type)
    if entry is None:
        raise ConfigError(yaml_path, f"expected one of {', '.join(REGISTRY)}, got {source_type!r}")
    module, cls = entry
    return getattr(import_module(module), cls)()
