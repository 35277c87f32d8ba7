"""Load and validate the YAML config once. Every problem is a ConfigError naming its YAML path."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from lib.config.envsubst import CONNECT_REFERENCE_EXPECTED, Lookups, default_lookups, is_connect_reference, substitute
from lib.config.kafka_section import parse_kafka
from lib.config.model import (
    CHECKSUM_BUCKETS,
    EVENT_READERS,
    LAKE_FORMATS,
    LONG_COLUMN_POLICIES,
    MESSAGE_FORMATS,
    READ_ISOLATIONS,
    SMALL_TABLE_READERS,
    SMALL_TABLE_WRITERS,
    SOURCE_TYPES,
    STARTING_OFFSETS,
    STORAGE_AUTH_FIELDS,
    STORAGE_AUTH_MODES,
    BulkConfig,
    CatalogConfig,
    CdcConfig,
    ColumnRules,
    Config,
    ConnectionConfig,
    KafkaConfig,
    LakeConfig,
    SourceConfig,
    StorageAccount,
    StreamConfig,
    TableOverride,
    TableRules,
    ValidationConfig,
)
from lib.config.node import Node, show
from lib.errors import ConfigError
from lib.lake.paths import python_path

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None, lookups: Lookups | None = None) -> Config:
    """Read ``path``, substitute ``${...}`` references and return the validated :class:`Config`. A
    ``dbfs:/`` or ``file://`` path is read where Python reaches it (lib.lake.paths.python_path)."""
    local = python_path(str(path))
    if local is None:  # abfss://, wasbs://; dbfs:/ off Databricks
        raise ConfigError("", f"cannot read config file {str(path)!r}: not a path Python reaches here; use a local path, a volume (/Volumes/...) or a workspace file")
    file = Path(local)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {str(file)!r}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"{file} is not valid YAML{where}") from None
    return parse_config(raw, os.environ if env is None else env, default_lookups() if lookups is None else lookups)


def parse_config(raw: Any, env: Mapping[str, str], lookups: Lookups | None = None) -> Config:
    """Validate an already parsed YAML document (pure given ``lookups``; used by tests)."""
    doc = Node(substitute(raw, env, "", lookups), "")
    raw_sources = raw.get("sources") if isinstance(raw, dict) else None
    lake = doc.child("lake")
    lake_cfg = LakeConfig(
        root=lake.str("root", default="./lake"),
        format=lake.choice("format", LAKE_FORMATS, default="delta"),  # type: ignore[arg-type]
        spark_conf=tuple(sorted(lake.str_map("spark_conf").items())),
        pipeline_writer=lake.choice("pipeline_writer", SMALL_TABLE_WRITERS, default="delta-rs"),  # type: ignore[arg-type]
    )
    lake.done()
    kafka = parse_kafka(doc.child("kafka"), (lookups or default_lookups()).read_file, _env_name(raw, "kafka", "sasl_password"))
    checkpoints = doc.child("checkpoints")
    checkpoints_root = checkpoints.str("root", default="./checkpoints")
    checkpoints.done()
    bulk = _bulk(doc.child("bulk"))
    stream = _stream(doc.child("stream"))
    storage = _storage(doc.child("storage"))
    catalog = _catalog(doc.child("catalog"))
    sources_node = doc.child("sources", required=True)
    if not sources_node.value:
        raise ConfigError("sources", "expected at least one source")
    sources = tuple(
        (name, _source(sources_node.child(name, required=True), name, _password_env(raw_sources, name))) for name in sources_node.names()
    )
    doc.done()
    resolved = tuple(lookups.resolved) if lookups is not None else ()
    sources = tuple((name, replace(_with_kafka(src, kafka), catalog=catalog)) for name, src in sources)
    return Config(lake_cfg, checkpoints_root, kafka, bulk, sources, stream, storage, catalog=catalog, resolved_secrets=resolved)


def _catalog(node: Node) -> CatalogConfig | None:
    """``catalog``: register every lake table by name (lib/lake/catalog.py); absent: tables by path only."""
    if node.value is None:
        return None
    d = CatalogConfig()
    cfg = CatalogConfig(name=node.str("name", default=d.name), schema=node.str("schema", default=d.schema))
    if not re.fullmatch(r"[A-Za-z0-9_-]+", cfg.name):
        raise ConfigError(node._at("name"), f"expected a catalog name of letters, digits, '_' and '-', got {cfg.name!r}")
    try:
        cfg.schema.format(source="s", schema="s")
    except (KeyError, IndexError, ValueError):
        raise ConfigError(node._at("schema"), f"expected a template of {{source}} and {{schema}} only, got {cfg.schema!r}") from None
    node.done()
    return cfg


def _storage(node: Node) -> tuple[StorageAccount, ...]:
    """``storage.accounts.<account>``: one auth mode per Azure storage account (docs/azure.md)."""
    accounts_node = node.child("accounts")
    node.done()
    accounts = []
    for name in accounts_node.names():
        account = accounts_node.child(name, required=True)
        if not re.fullmatch(r"[a-z0-9]{3,24}", name):
            raise ConfigError(account.path, "expected a storage account name: 3 to 24 lower-case letters and digits")
        auth = account.choice("auth", STORAGE_AUTH_MODES, required=True)
        required, optional = STORAGE_AUTH_FIELDS[auth]
        default_endpoint = "blob.core.windows.net" if auth == "emulator" else "dfs.core.windows.net"
        values = {key: account.str(key, required=True) for key in required}
        values.update({key: account.str(key) for key in optional if account.str(key) is not None})
        endpoint = account.str("endpoint", default=default_endpoint)
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", endpoint):
            raise ConfigError(account._at("endpoint"), f"expected a host suffix such as dfs.core.windows.net, got {endpoint!r}")
        for key in account.names():
            if key not in account._seen:
                allowed = ", ".join(("auth", "endpoint", *required, *optional))
                raise ConfigError(account._at(key), f"not a setting of auth {auth} (allowed: {allowed})")
        if auth == "sas" and len(values) != 1:
            raise ConfigError(account.path, "auth sas needs exactly one of sas_token (a fixed token) and sas_provider (a SASTokenProvider class)")
        accounts.append(StorageAccount(name=name, auth=auth, endpoint=endpoint, **values))
    return tuple(accounts)


def _with_kafka(source: SourceConfig, kafka: KafkaConfig) -> SourceConfig:
    if source.cdc is None:
        return source
    return replace(source, cdc=replace(source.cdc, kafka=kafka))


def _bulk(node: Node) -> BulkConfig:
    d = BulkConfig()
    cfg = BulkConfig(
        parallel_tables=node.int("parallel_tables", default=d.parallel_tables, minimum=1),
        parallel_small_tables=node.int("parallel_small_tables", default=d.parallel_small_tables, minimum=1),
        partitions=node.int("partitions", default=d.partitions, minimum=1),
        fetch_size=node.int("fetch_size", default=d.fetch_size, minimum=1),
        rows_per_chunk=node.int("rows_per_chunk", default=d.rows_per_chunk, minimum=1),
        min_rows_to_split=node.int("min_rows_to_split", default=d.min_rows_to_split, minimum=0),
        small_table_writer=node.choice("small_table_writer", SMALL_TABLE_WRITERS, default=d.small_table_writer),
        small_table_reader=node.choice("small_table_reader", SMALL_TABLE_READERS, default=d.small_table_reader),
        max_attempts=node.int("max_attempts", default=d.max_attempts, minimum=1),
        retry_backoff_seconds=node.float("retry_backoff_seconds", default=d.retry_backoff_seconds),
        progress_interval_seconds=node.float("progress_interval_seconds", default=d.progress_interval_seconds),
    )
    node.done()
    return cfg


def _deletion_vectors(node: Node) -> bool | None:
    """``stream.deletion_vectors``: true, false, or auto (None: on for the tables Spark MERGEs)."""
    value = node._get("deletion_vectors", False)
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
        return node.bool("deletion_vectors", default=False)
    raise ConfigError(node._at("deletion_vectors"), f"expected auto, true or false, got {show(value)}")


def _stream(node: Node) -> StreamConfig:
    d = StreamConfig()
    cfg = StreamConfig(
        trigger_seconds=node.float("trigger_seconds", default=d.trigger_seconds),
        max_offsets_per_trigger=node.int("max_offsets_per_trigger", default=d.max_offsets_per_trigger, minimum=1),
        apply_threads=node.int("apply_threads", default=d.apply_threads, minimum=1),
        starting_offsets=node.choice("starting_offsets", STARTING_OFFSETS, default=d.starting_offsets),
        fail_on_data_loss=node.bool("fail_on_data_loss", default=d.fail_on_data_loss),
        tombstone_retention_hours=node.float("tombstone_retention_hours", default=d.tombstone_retention_hours),
        deletion_vectors=_deletion_vectors(node),
        merge_writer=node.choice("merge_writer", SMALL_TABLE_WRITERS, default=d.merge_writer),
        merge_writer_max_table_mb=node.int("merge_writer_max_table_mb", default=d.merge_writer_max_table_mb, minimum=1),
        event_reader=node.choice("event_reader", EVENT_READERS, default=d.event_reader),
        max_attempts=node.int("max_attempts", default=d.max_attempts, minimum=1),
        retry_backoff_seconds=node.float("retry_backoff_seconds", default=d.retry_backoff_seconds),
        stall_seconds=node.float("stall_seconds", default=d.stall_seconds),
        heal_connector=node.bool("heal_connector", default=d.heal_connector),
        retry_failed_seconds=node.float("retry_failed_seconds", default=d.retry_failed_seconds),
    )
    if cfg.stall_seconds <= 0:
        raise ConfigError(node._at("stall_seconds"), f"expected a number > 0, got {cfg.stall_seconds}")
    if cfg.retry_failed_seconds < 0:
        raise ConfigError(node._at("retry_failed_seconds"), f"expected a number >= 0, got {cfg.retry_failed_seconds}")
    if cfg.trigger_seconds <= 0:
        raise ConfigError(node._at("trigger_seconds"), f"expected a number > 0, got {cfg.trigger_seconds}")
    node.done()
    return cfg


def _password_env(raw_sources: Any, name: str) -> str | None:
    """The VAR of a raw ``password: ${VAR}`` / ``${VAR:-x}`` (before substitution), else None."""
    return _env_name(raw_sources, name, "connection", "password")


def _env_name(raw: Any, *keys: str) -> str | None:
    """The VAR when the raw (unsubstituted) value at ``keys`` is ``${VAR}`` / ``${VAR:-x}``, else None."""
    try:
        for key in keys:
            raw = raw[key]
    except (KeyError, TypeError):
        return None
    match = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}", raw) if isinstance(raw, str) else None
    return match.group(1) if match else None


def _source(node: Node, name: str, password_env: str | None = None) -> SourceConfig:
    if not _NAME.match(name):
        raise ConfigError(node.path, "source names may contain letters, digits, '_', '.', '-' only")
    if name.startswith("_"):  # <root>/<source> must never be <root>/_pipeline (a fresh start deletes <root>/<source>)
        raise ConfigError(node.path, "a source name must not start with '_' (the lake keeps its own tables under _pipeline)")
    kind = node.choice("type", SOURCE_TYPES, required=True)
    connection = _connection(node.child("connection", required=True), kind, password_env)
    schemas = node.str_list("schemas", required=True)
    if not schemas:
        raise ConfigError(f"{node.path}.schemas", "expected at least one schema")
    cdc = None
    cdc_node = node.child("cdc")
    if cdc_node.value is not None:
        default_name = "lakehouse_" + re.sub(r"[^a-z0-9_]", "_", name.lower())
        cdc = CdcConfig(
            topic_prefix=cdc_node.str("topic_prefix", required=True),
            slot_name=cdc_node.str("slot_name", default=default_name),
            publication_name=cdc_node.str("publication_name", default=default_name),
            connector_name=cdc_node.str("connector_name", default=f"lakehouse-{name}"),
            connect_url=cdc_node.str("connect_url"),
            connect_username=cdc_node.str("connect_username"),
            connect_password=cdc_node.str("connect_password"),
            connect_ca_location=cdc_node.str("connect_ca_location"),
            password_reference=_password_reference(cdc_node),
            replica_identity_full=cdc_node.bool("replica_identity_full", default=False),
            heartbeat_interval_ms=cdc_node.int("heartbeat_interval_ms", default=10_000, minimum=0),
            heartbeat_action_query=cdc_node.str("heartbeat_action_query"),
            database_name=cdc_node.str("database_name"),
            pdb_name=cdc_node.str("pdb_name"),
            message_format=cdc_node.choice("message_format", MESSAGE_FORMATS, default="compact"),
            history=cdc_node.choice("history", HISTORY_MODES, default="none"),  # type: ignore[arg-type]
            history_columns=_history_columns(cdc_node),
            deletes=cdc_node.choice("deletes", DELETE_MODES, default="hard"),  # type: ignore[arg-type]
            auto_add_tables=cdc_node.bool("auto_add_tables", default=True),
            auto_add_interval_seconds=_auto_add_interval(cdc_node),
        )
        _check_connect(cdc, cdc_node)
        for key in ("database_name", "pdb_name"):
            if key in cdc_node.names() and kind != "oracle":
                raise ConfigError(f"{cdc_node.path}.{key}", f"applies to oracle sources only; this source has type {kind}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", cdc.topic_prefix):
            raise ConfigError(f"{cdc_node.path}.topic_prefix", "expected letters, digits, '_', '.', '-' only (it starts Kafka topic names)")
        if not re.fullmatch(r"[a-z0-9_]+", cdc.slot_name):
            raise ConfigError(f"{cdc_node.path}.slot_name", "expected lower-case letters, digits and '_' only (PostgreSQL slot names)")
    cdc_node.done()
    tables_node = node.child("tables")
    overrides = tuple((key, _override(tables_node.child(key, required=True))) for key in tables_node.names())
    for key, _ in overrides:
        if "." not in key:
            raise ConfigError(f"{tables_node.path}.{key}", "table overrides are keyed by 'schema.table'")
    cfg = SourceConfig(
        name=name,
        type=kind,  # type: ignore[arg-type]
        connection=connection,
        schemas=tuple(schemas),
        include=tuple(node.str_list("include", default=["*"])),
        exclude=tuple(node.str_list("exclude", default=[])),
        cdc=cdc,
        tables=overrides,
        validation=_validation(node.child("validation")),
        long_columns=_long_columns(node, kind),
    )
    node.done()
    return cfg


def _auto_add_interval(cdc_node: Node) -> float:
    """``cdc.auto_add_interval_seconds``: a positive number of seconds (at least 1: each look lists the source's tables)."""
    value = cdc_node.float("auto_add_interval_seconds", default=30.0)
    if value < 1:
        raise ConfigError(f"{cdc_node.path}.auto_add_interval_seconds", f"expected a number of seconds >= 1, got {value:g}")
    return value


def _check_connect(cdc: CdcConfig, node: Node) -> None:
    """``cdc.connect_*``: basic authentication needs both halves; a CA needs an https URL."""
    url = cdc.connect_url
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(node._at("connect_url"), "expected an http:// or https:// URL of Kafka Connect's REST API")
    if (cdc.connect_username is None) != (cdc.connect_password is None):
        missing = "connect_password" if cdc.connect_password is None else "connect_username"
        raise ConfigError(node._at(missing), "is required: basic authentication needs both connect_username and connect_password")
    for key in ("connect_username", "connect_ca_location"):
        if getattr(cdc, key) is not None and url is None:
            raise ConfigError(node._at(key), "applies with connect_url")
    if cdc.connect_ca_location is not None and not (url or "").startswith("https://"):
        raise ConfigError(node._at("connect_ca_location"), "applies to an https:// connect_url")
    if cdc.connect_password is not None and (url or "").startswith("http://") and not _is_loopback(url or ""):
        raise ConfigError(node._at("connect_password"), "would be sent in clear text: use an https:// connect_url")


def _is_loopback(url: str) -> bool:
    host = re.sub(r"^https?://(\[[^]]*\]|[^:/]*).*$", r"\1", url)
    return host in ("127.0.0.1", "localhost", "[::1]")


def _password_reference(cdc_node: Node) -> str | None:
    """``cdc.password_reference``: kept verbatim (lib/config/envsubst.py) and only ever a reference; the
    error never shows the value, which may be a password."""
    value = cdc_node._get("password_reference", False)
    if value is None:
        return None
    if not is_connect_reference(value):
        raise ConfigError(cdc_node._at("password_reference"), CONNECT_REFERENCE_EXPECTED)
    return str(value)


# Connection keys that only one source type takes (docs/reference.md).
_TYPE_ONLY_KEYS = {
    "service_name": "oracle",
    "sid": "oracle",
    "descriptor": "oracle",
    "instance": "sqlserver",
    "encrypt": "sqlserver",
    "trust_server_certificate": "sqlserver",
    "read_isolation": "sqlserver",
}


def _connection(conn: Node, kind: str, password_env: str | None) -> ConnectionConfig:
    for key, only in _TYPE_ONLY_KEYS.items():
        if key in conn.names() and kind != only:
            raise ConfigError(conn._at(key), f"is a {only} connection key; this source has type {kind}")
    descriptor = conn.str("descriptor")
    connection = ConnectionConfig(
        host=conn.str("host", required=descriptor is None) or "",
        port=conn.int("port", default={"postgres": 5432, "oracle": 1521, "sqlserver": 1433}[kind], minimum=1),
        user=conn.str("user", required=True),
        password=conn.str("password", default=""),
        database=conn.str("database", required=kind != "oracle"),
        service_name=conn.str("service_name"),
        sid=conn.str("sid"),
        descriptor=descriptor,
        instance=conn.str("instance"),
        encrypt=conn.bool("encrypt", default=True),
        trust_server_certificate=conn.bool("trust_server_certificate", default=False),
        read_isolation=conn.choice("read_isolation", READ_ISOLATIONS, default="read_committed"),
        properties=tuple(sorted(conn.str_map("properties").items())),
        password_env=password_env,
    )
    if kind == "oracle":
        given = [k for k in ("service_name", "sid", "descriptor") if getattr(connection, k)]
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ConfigError(conn.path, f"an oracle connection needs exactly one of service_name, sid, descriptor ({found})")
        if "database" in conn.names() and connection.database is not None:
            raise ConfigError(conn._at("database"), "oracle connections name the database by service_name, sid or descriptor")
    conn.done()
    return connection


def _long_columns(node: Node, kind: str) -> str:
    if "long_columns" in node.names() and kind != "oracle":
        raise ConfigError(node._at("long_columns"), f"applies to oracle sources only; this source has type {kind}")
    return str(node.choice("long_columns", LONG_COLUMN_POLICIES, default="error"))


def _validation(node: Node) -> ValidationConfig:
    d = ValidationConfig()
    buckets = node.int("checksum_buckets", default=d.checksum_buckets)
    if buckets not in CHECKSUM_BUCKETS:
        raise ConfigError(f"{node.path}.checksum_buckets", f"expected one of {', '.join(map(str, CHECKSUM_BUCKETS))}, got {buckets}")
    drill = node.int("drill_down_rows", default=d.drill_down_rows, minimum=0)
    tables_node = node.child("tables")
    tables = []
    for key in tables_node.names():
        if "." not in key:
            raise ConfigError(f"{tables_node.path}.{key}", "validation rules are keyed by 'schema.table'")
        tables.append((key, _table_rules(tables_node.child(key, required=True))))
    tables_node.done()
    node.done()
    return ValidationConfig(checksum_buckets=buckets, drill_down_rows=drill, tables=tuple(tables))


def _table_rules(node: Node) -> TableRules:
    count = node.child("row_count")
    low, high = count.int("min", minimum=0), count.int("max", minimum=0)
    if low is not None and high is not None and low > high:
        raise ConfigError(count.path, f"min ({low}) is greater than max ({high})")
    count.done()
    columns_node = node.child("columns")
    columns = tuple((name, _column_rules(columns_node.child(name, required=True))) for name in columns_node.names())
    columns_node.done()
    rules = TableRules(row_count_min=low, row_count_max=high, checksum=node.bool("checksum", default=True), columns=columns)
    node.done()
    return rules


def _column_rules(node: Node) -> ColumnRules:
    low, high = node.scalar("min"), node.scalar("max")
    if low is not None and high is not None and type(low) is type(high) and low > high:
        raise ConfigError(node.path, f"min ({low!r}) is greater than max ({high!r})")
    in_set = node.scalar_list("in")
    if in_set is not None and not in_set:
        raise ConfigError(f"{node.path}.in", "expected at least one value")
    regex = node.str("regex")
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ConfigError(f"{node.path}.regex", f"not a valid regular expression: {exc}") from None
    mostly = node.float("mostly", default=1.0)
    if not 0 < mostly <= 1:
        raise ConfigError(f"{node.path}.mostly", f"expected a fraction in (0, 1], got {mostly}")
    rules = ColumnRules(
        not_null=node.bool("not_null", default=False),
        unique=node.bool("unique", default=False),
        min_value=low,
        max_value=high,
        in_set=tuple(in_set) if in_set is not None else None,
        regex=regex,
        mostly=mostly,
    )
    node.done()
    if rules == ColumnRules(mostly=mostly):
        raise ConfigError(node.path, "expected at least one rule: not_null, unique, min, max, in, regex")
    return rules


def _override(node: Node) -> TableOverride:
    keys = node.str_list("key_columns")
    result = TableOverride(
        key_columns=tuple(keys) if keys else None,
        split_column=node.str("split_column"),
        partitions=node.int("partitions", minimum=1),
        history=node.choice("history", HISTORY_MODES),  # type: ignore[arg-type]
        history_columns=_history_columns(node),
        deletes=node.choice("deletes", DELETE_MODES),  # type: ignore[arg-type]
    )
    node.done()
    return result


HISTORY_MODES: tuple[str, ...] = ("none", "scd2")
DELETE_MODES: tuple[str, ...] = ("hard", "soft")


def _history_columns(node: Node) -> tuple[str, ...] | None:
    """``history_columns``: the columns whose changes add a version (scd2); None: every column."""
    if "history_columns" not in node.names():
        return None
    columns = node.str_list("history_columns")
    if not columns:
        raise ConfigError(f"{node.path}.history_columns", "expected at least one column (leave the key out to version every change)")
    return tuple(columns)
