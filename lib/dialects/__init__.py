"""Source dialects, chosen by the config's ``type`` from one registry."""

from __future__ import annotations

from typing import Any

from lib.errors import ConfigError


def get_dialect(source_type: str, yaml_path: str = "type") -> Any:
    """The dialect object for ``source_type`` (``postgres`` | ``oracle`` | ``sqlserver``)."""
    if source_type == "postgres":
        from lib.dialects.postgres import PostgresDialect

        return PostgresDialect()
    if source_type in ("oracle", "sqlserver"):
        raise ConfigError(yaml_path, f"the {source_type} dialect is not implemented yet (postgres is); see docs/architecture.md")
    raise ConfigError(yaml_path, f"expected one of postgres, oracle, sqlserver, got {source_type!r}")
