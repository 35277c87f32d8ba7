"""Typed configuration: ``load_config(path)`` returns a frozen :class:`Config`."""

from lib.config.loader import load_config, parse_config
from lib.config.model import (
    BulkConfig,
    CdcConfig,
    Config,
    ConnectionConfig,
    LakeConfig,
    SourceConfig,
    TableOverride,
)

__all__ = [
    "BulkConfig",
    "CdcConfig",
    "Config",
    "ConnectionConfig",
    "LakeConfig",
    "SourceConfig",
    "TableOverride",
    "load_config",
    "parse_config",
]
