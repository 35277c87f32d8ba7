"""``${VAR}``, ``${VAR:-default}``, ``${file:/path}`` and ``${secret:scope/key}`` in YAML string values.

Pure functions: reading files and Databricks secrets goes through a :class:`Lookups` the caller provides
(:func:`default_lookups` in production, plain dicts in tests). Values read from a file or a secret scope are
secrets wherever they end up: they are collected in ``Lookups.resolved`` for redaction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lib.errors import ConfigError

_PATTERN = re.compile(r"\$\{(?:(file|secret):(?!-)([^}]*)|([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?)\}")
_SECRET_REF = re.compile(r"^([A-Za-z0-9_.@-]+)/([A-Za-z0-9_.@-]+)$")
# Values handed verbatim to another system that resolves its own ${...} references: Kafka Connect's config
# providers (${env:VAR}, ${file:/path.properties:key}) in the Debezium connector's password reference.
_VERBATIM = re.compile(r"^sources\.[^.]+\.cdc\.password_reference$")
# What such a verbatim value must be: exactly one Kafka Connect config-provider reference, ${provider:key} or
# ${provider:path:key} (org.apache.kafka.common.config.ConfigTransformer), never a literal password.
CONNECT_REFERENCE = re.compile(r"\$\{[A-Za-z0-9_.-]+:[^{}$]+\}")
CONNECT_REFERENCE_EXPECTED = (
    "expected exactly one Kafka Connect config-provider reference, ${<provider>:<key>} or ${<provider>:<path>:<key>} "
    "(e.g. ${file:/secrets/db.properties:password} or ${env:DB_PASSWORD}), which Kafka Connect resolves: "
    "never the password itself, which would be written to the connector config and sent to Kafka Connect "
    "(the value is not shown)"
)


def is_connect_reference(value: object) -> bool:
    """True when ``value`` is exactly one Kafka Connect config-provider reference and nothing else."""
    return isinstance(value, str) and CONNECT_REFERENCE.fullmatch(value) is not None


class Unreadable(Exception):
    """A file or secret that cannot be read; its message says why (no secret value in it)."""


@dataclass
class Lookups:
    """Where ``${file:...}`` and ``${secret:...}`` values come from, and what was read (for redaction)."""

    read_file: Callable[[str], str]
    read_secret: Callable[[str, str], str]
    resolved: list[str] = field(default_factory=list)


def substitute(value: Any, env: Mapping[str, str], path: str = "", lookups: Lookups | None = None) -> Any:
    """Return ``value`` with every reference replaced, recursively.

    An unset variable without a default, an unreadable file or an unknown secret is a :class:`ConfigError`
    naming the YAML path. Substituted values stay strings (a password ``0123`` stays ``"0123"``); the typed
    readers of the loader accept numeric strings where a number is expected (``port: ${PG_PORT}``).
    A file's content is used without its trailing line break(s).
    """
    if isinstance(value, dict):
        return {k: substitute(v, env, _join(path, str(k)), lookups) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, f"{path}[{i}]", lookups) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value or _VERBATIM.match(path):
        return value

    def replace(match: re.Match[str]) -> str:
        kind, ref, name, default = match.groups()
        if kind is not None:
            return _lookup(kind, ref.strip(), path, lookups)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(path, f"environment variable {name} is not set and has no default (use ${{{name}:-default}})")

    return _PATTERN.sub(replace, value)


def _lookup(kind: str, ref: str, path: str, lookups: Lookups | None) -> str:
    if lookups is None:
        raise ConfigError(path, f"${{{kind}:...}} references are not available here")
    if kind == "file":
        if not ref.startswith("/"):
            raise ConfigError(path, f"${{file:{ref}}}: expected an absolute path, e.g. ${{file:/run/secrets/db_password}}")
        try:
            text = lookups.read_file(ref).rstrip("\r\n")
        except Unreadable as exc:
            raise ConfigError(path, f"${{file:{ref}}}: {exc}") from None
    else:
        match = _SECRET_REF.match(ref)
        if not match:
            raise ConfigError(path, f"${{secret:{ref}}}: expected ${{secret:<scope>/<key>}}")
        try:
            text = lookups.read_secret(match.group(1), match.group(2))
        except Unreadable as exc:
            raise ConfigError(path, f"${{secret:{ref}}}: {exc}") from None
    if text:
        lookups.resolved.append(text)
    return text


def read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise Unreadable(f"cannot read the file: {exc.strerror}") from None


def on_databricks(env: Mapping[str, str] | None = None) -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in (os.environ if env is None else env)


def read_databricks_secret(scope: str, key: str) -> str:
    """A secret from a Databricks secret scope through dbutils (Databricks runtime only)."""
    if not on_databricks():
        raise Unreadable(
            "Databricks secret references are resolved through dbutils on a Databricks cluster only; "
            "outside Databricks use ${ENV_VAR} or ${file:/path}"
        )
    try:
        from databricks.sdk.runtime import dbutils  # type: ignore[import-not-found]  # on every Databricks runtime
    except ImportError:  # older runtimes
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
        from pyspark.sql import SparkSession

        dbutils = DBUtils(SparkSession.builder.getOrCreate())
    try:
        return str(dbutils.secrets.get(scope=scope, key=key))
    except Exception as exc:  # noqa: BLE001 - dbutils raises py4j / SDK errors; only their first line is useful
        raise Unreadable(f"dbutils.secrets.get failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def default_lookups() -> Lookups:
    return Lookups(read_file=read_file, read_secret=read_databricks_secret)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
