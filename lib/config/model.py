"""The typed, frozen configuration. Built once by :mod:`lib.config.loader`; never mutated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

T = TypeVar("T")

SourceType = Literal["postgres", "oracle", "sqlserver"]
LakeFormat = Literal["delta", "parquet"]
# How the connector writes change events: values only (the stream knows every column's encoding), or
# Kafka Connect's JSON with a schema block in every message (as existing Debezium deployments write them).
MessageFormat = Literal["compact", "json_with_schema"]
History = Literal["none", "scd2"]  # scd2: one lake row per version (__valid_from, __valid_to, __is_current, __is_deleted)
Deletes = Literal["hard", "soft"]  # soft: a mirror table keeps a deleted row with __is_deleted = true
MESSAGE_FORMATS: tuple[str, ...] = ("compact", "json_with_schema")
SmallTableWriter = Literal["delta-rs", "spark"]  # also who writes the status and tombstone tables (lake.pipeline_writer)
SMALL_TABLE_WRITERS: tuple[str, ...] = ("delta-rs", "spark")
SmallTableReader = Literal["direct", "spark"]  # who reads a small table delta-rs commits (lib/bulk/direct_read.py)
SMALL_TABLE_READERS: tuple[str, ...] = ("direct", "spark")
EventReader = Literal["direct", "spark"]  # who reads and decodes the CDC events of a range (lib/cdc/direct/apply.py)
EVENT_READERS: tuple[str, ...] = ("direct", "spark")
SOURCE_TYPES: tuple[str, ...] = ("postgres", "oracle", "sqlserver")
LONG_COLUMN_POLICIES: tuple[str, ...] = ("exclude", "skip_table", "error")  # Oracle LONG / LONG RAW columns
READ_ISOLATIONS: tuple[str, ...] = ("read_committed", "snapshot")  # SQL Server bulk reads
LAKE_FORMATS: tuple[str, ...] = ("delta", "parquet")


@dataclass(frozen=True)
class ConnectionConfig:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str | None = None  # postgres / sqlserver
    service_name: str | None = None  # oracle
    sid: str | None = None  # oracle
    descriptor: str | None = None  # oracle: a full connect descriptor "(DESCRIPTION=...)" instead of host/port/service
    instance: str | None = None  # sqlserver: named instance (port then comes from the SQL Browser unless set)
    encrypt: bool = True  # sqlserver
    trust_server_certificate: bool = False  # sqlserver
    read_isolation: str = "read_committed"  # sqlserver: read_committed | snapshot (needs ALLOW_SNAPSHOT_ISOLATION ON)
    properties: tuple[tuple[str, str], ...] = ()  # extra JDBC properties, e.g. (("sslmode", "require"),)
    password_env: str | None = None  # the variable named by `password: ${VAR}`, for references to it

    def __repr__(self) -> str:
        target = self.database or self.service_name or self.sid or ("<descriptor>" if self.descriptor else None)
        return f"ConnectionConfig(host={self.host!r}, port={self.port}, database={target!r}, user={self.user!r}, password='***')"


@dataclass(frozen=True)
class TableOverride:
    """Per-table settings under ``sources.<name>.tables."<schema>.<table>"``."""

    key_columns: tuple[str, ...] | None = None
    split_column: str | None = None
    partitions: int | None = None
    # History of the table's lake copy (docs/configuration.md, "History"); None: the source's cdc setting
    history: History | None = None
    history_columns: tuple[str, ...] | None = None
    deletes: Deletes | None = None



@dataclass(frozen=True)
class HistoryMode:
    """How one table's lake copy keeps the source's changes (``cdc.history``/``cdc.deletes`` of its
    source, or its own ``tables."<schema>.<table>"`` override)."""

    history: History = "none"
    history_columns: tuple[str, ...] | None = None  # scd2: only changes to these columns add a version
    deletes: Deletes = "hard"

    @property
    def scd2(self) -> bool:
        return self.history == "scd2"

    @property
    def soft_deletes(self) -> bool:
        return self.history == "none" and self.deletes == "soft"

    @property
    def plain(self) -> bool:
        return not (self.scd2 or self.soft_deletes)


SECURITY_PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


@dataclass(frozen=True)
class OAuthBearer:
    """``kafka.oauthbearer``: OIDC client credentials (Event Hubs with Microsoft Entra ID, any OIDC IdP)."""

    token_endpoint_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None  # Event Hubs: https://<namespace>.servicebus.windows.net/.default


@dataclass(frozen=True)
class KafkaConfig:
    """The top-level ``kafka`` section: how every Kafka client of the jobs connects (lib/kafka/settings.py)."""

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    sasl_password_env: str | None = None  # VAR of `sasl_password: ${VAR}`: connector configs reference ${env:VAR}
    oauthbearer: OAuthBearer | None = None
    ssl_ca_location: str | None = None  # PEM bundle of the CAs to trust (default: the system's)
    ssl_certificate_location: str | None = None  # mTLS: the client certificate (PEM, chain allowed)
    ssl_key_location: str | None = None  # mTLS: the client's private key (PEM, PKCS#8)
    ssl_key_password: str | None = field(default=None, repr=False)  # when the private key is encrypted
    # The PEM files' contents, read once at load: Spark's Kafka source gets them inline, so no executor
    # needs the files.
    ssl_ca_pem: str | None = field(default=None, repr=False)
    ssl_certificate_pem: str | None = field(default=None, repr=False)
    ssl_key_pem: str | None = field(default=None, repr=False)
    properties: tuple[tuple[str, str], ...] = ()  # extra client properties, given as-is to every client

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def secrets(self) -> tuple[str, ...]:
        values = (self.sasl_password, self.ssl_key_password, self.ssl_key_pem,
                  self.oauthbearer.client_secret if self.oauthbearer else None)
        return tuple(v for v in values if v)


@dataclass(frozen=True)
class CdcConfig:
    topic_prefix: str
    slot_name: str
    publication_name: str
    connector_name: str
    connect_url: str | None = None  # Kafka Connect REST, http:// or https://
    connect_username: str | None = None  # HTTP basic authentication to Kafka Connect REST
    connect_password: str | None = field(default=None, repr=False)
    connect_ca_location: str | None = None  # PEM bundle of the CAs to trust for an https connect_url
    # How the Debezium connector gets the password: a Kafka Connect config-provider reference such as
    # "${env:SHOP_DB_PASSWORD}" or "${file:/secrets/shop.properties:password}". Default: ${env:VAR}
    # when connection.password is "${VAR}". The password itself is never written into a connector config.
    password_reference: str | None = None
    replica_identity_full: bool = False  # allow ALTER TABLE ... REPLICA IDENTITY FULL for keyless tables
    heartbeat_interval_ms: int = 10_000
    # Debezium heartbeat.action.query: a statement the connector runs on the source with every heartbeat,
    # so a slot on a database whose captured tables are quiet (while others write WAL) still advances
    heartbeat_action_query: str | None = None
    # Oracle: Debezium's database.dbname (default: the connection's service_name or sid; in a CDB the
    # root container's name) and database.pdb.name (the pluggable database holding the tables).
    database_name: str | None = None
    pdb_name: str | None = None
    # The top-level kafka section: Oracle and SQL Server connectors keep their schema history there.
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    message_format: MessageFormat = "compact"  # the connector's value format; the stream reads both
    history: History = "none"  # scd2: the lake tables keep every version (docs/configuration.md, "History")
    history_columns: tuple[str, ...] | None = None  # scd2: a change to other columns only updates the current version
    deletes: Deletes = "hard"  # soft: mirror tables keep deleted rows, __is_deleted = true
    # The long-running stream adds tables created later in the source's schemas (include/exclude) to the
    # capture, copies and streams them, and reports dropped ones (lib/cdc/new_tables.py)
    auto_add_tables: bool = True
    auto_add_interval_seconds: float = 30.0  # how often the source's tables are listed for that


@dataclass(frozen=True)
class BulkConfig:
    """Bulk-load tuning, top-level key ``bulk``. Command-line flags override these."""

    parallel_tables: int = 2
    parallel_small_tables: int = 8  # tables below min_rows_to_split, copied at once besides parallel_tables
    partitions: int = 4
    fetch_size: int = 20000
    rows_per_chunk: int = 10_000_000
    min_rows_to_split: int = 50_000
    small_table_writer: SmallTableWriter = "delta-rs"  # who commits a new small table (lib/bulk/arrow_writer.py)
    small_table_reader: SmallTableReader = "direct"  # who reads it: the source's Python driver, or Spark JDBC
    max_attempts: int = 3
    retry_backoff_seconds: float = 2.0
    progress_interval_seconds: float = 30.0


StartingOffsets = Literal["earliest", "latest"]
STARTING_OFFSETS: tuple[str, ...] = ("earliest", "latest")


@dataclass(frozen=True)
class StreamConfig:
    """CDC stream tuning, top-level key ``stream``. Command-line flags override these."""

    trigger_seconds: float = 1.0  # how often the apply loop looks for new events
    max_offsets_per_trigger: int = 100_000  # Kafka messages per table apply, at most
    apply_threads: int = 4  # tables applied at once (each on its own cadence)
    starting_offsets: StartingOffsets = "earliest"  # where a table without recorded offsets starts reading its topic
    fail_on_data_loss: bool = True  # stop when Kafka deleted messages the stream has not read yet
    tombstone_retention_hours: float = 168.0  # how long delete positions are kept against late replays
    # Delta deletion vectors on the lake tables (Spark's MERGEs then rewrite changed rows only): True, False,
    # or None (auto): on for the tables Spark MERGEs, off for those delta-rs MERGEs (it writes none)
    deletion_vectors: bool | None = None
    merge_writer: SmallTableWriter = "delta-rs"  # who MERGEs the events into lake tables on local disk (lib/cdc/delta_rs_merge.py)
    # delta-rs MERGEs copy the files holding changed rows (no deletion vectors): only tables up to this size
    merge_writer_max_table_mb: int = 256
    # who reads and decodes a range of events of a table delta-rs MERGEs: Python in one pass (compact
    # PostgreSQL events; anything else falls back to Spark), or Spark always (lib/cdc/direct/apply.py)
    event_reader: EventReader = "direct"
    max_attempts: int = 3  # per table and batch, before the table is marked failed
    retry_backoff_seconds: float = 2.0
    # Freshness and recovery (docs/operations.md): no connector heartbeat for this long = the source is
    # stalled (jobs/status.py flags it; the stream's health check recovers the connector when heal_connector)
    stall_seconds: float = 90.0
    heal_connector: bool = True
    retry_failed_seconds: float = 60.0  # the long-running stream tries a failed table again after this long (0: never)


@dataclass(frozen=True)
class ColumnRules:
    """Expectations on one lake column, under ``sources.<name>.validation.tables."<schema>.<table>".columns.<column>``."""

    not_null: bool = False
    unique: bool = False
    min_value: int | float | str | None = None  # YAML `min` (inclusive)
    max_value: int | float | str | None = None  # YAML `max` (inclusive)
    in_set: tuple[int | float | str | bool, ...] | None = None  # YAML `in`
    regex: str | None = None  # Java regular expression every non-null value must match (find, not full match)
    mostly: float = 1.0  # fraction of non-null values that must meet the column rules


@dataclass(frozen=True)
class TableRules:
    """Per-table validation rules, under ``sources.<name>.validation.tables."<schema>.<table>"``."""

    row_count_min: int | None = None
    row_count_max: int | None = None
    checksum: bool = True  # compare content checksums with the source
    columns: tuple[tuple[str, ColumnRules], ...] = ()


CHECKSUM_BUCKETS: tuple[int, ...] = (16, 256, 4096)


@dataclass(frozen=True)
class ValidationConfig:
    """``sources.<name>.validation``: how jobs/validate.py checks this source's lake tables."""

    checksum_buckets: int = 256  # buckets per table (by the md5 of the key), one of CHECKSUM_BUCKETS
    drill_down_rows: int = 200_000  # max rows per side fetched to name the keys of differing buckets
    tables: tuple[tuple[str, TableRules], ...] = ()

    def rules_for(self, schema: str, table: str) -> TableRules:
        return _by_table(self.tables, schema, table, TableRules())


@dataclass(frozen=True)
class CatalogConfig:
    """``catalog``: every lake table also registered by name (lib/lake/catalog.py)."""

    name: str = "spark_catalog"  # a Unity Catalog catalog on Databricks; spark_catalog (the metastore) elsewhere
    schema: str = "{source}_{schema}"  # the catalog schema of a source schema: a template of {source} and {schema}


@dataclass(frozen=True)
class SourceConfig:
    name: str
    type: SourceType
    connection: ConnectionConfig
    schemas: tuple[str, ...]
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    cdc: CdcConfig | None = None
    tables: tuple[tuple[str, TableOverride], ...] = ()
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    # Oracle LONG / LONG RAW columns (Debezium cannot stream them): leave the column out of the lake
    # table (exclude), leave the whole table out (skip_table), or fail the table (error, the default).
    long_columns: str = "error"
    catalog: CatalogConfig | None = None  # the top-level catalog section: tables also registered by name

    def override_for(self, schema: str, table: str) -> TableOverride:
        return _by_table(self.tables, schema, table, TableOverride())

    def history_for(self, schema: str, table: str) -> HistoryMode:
        """The table's history mode: its override's keys, else the source's ``cdc`` keys."""
        o = self.override_for(schema, table)
        c = self.cdc
        history = o.history or (c.history if c else "none")
        columns = o.history_columns if o.history_columns is not None else (c.history_columns if c and o.history is None else None)
        return HistoryMode(history, columns if history == "scd2" else None, o.deletes or (c.deletes if c else "hard"))


@dataclass(frozen=True)
class LakeConfig:
    root: str
    format: LakeFormat = "delta"
    spark_conf: tuple[tuple[str, str], ...] = ()  # e.g. ADLS OAuth settings; values may be secrets
    pipeline_writer: SmallTableWriter = "delta-rs"  # who writes the status and tombstone tables on local disk (lib/lake/local_writer.py)

    def __repr__(self) -> str:
        keys = [k for k, _ in self.spark_conf]
        return f"LakeConfig(root={self.root!r}, format={self.format!r}, spark_conf_keys={keys!r}, pipeline_writer={self.pipeline_writer!r})"


StorageAuth = Literal["account_key", "sas", "service_principal", "managed_identity", "workload_identity", "none", "emulator"]
STORAGE_AUTH_MODES: tuple[str, ...] = ("account_key", "sas", "service_principal", "managed_identity", "workload_identity", "none", "emulator")
# The fields each auth mode takes (required ones first); any other field under the account is a config error.
STORAGE_AUTH_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "account_key": (("key",), ()),
    "sas": ((), ("sas_token", "sas_provider")),  # exactly one of the two
    "service_principal": (("tenant_id", "client_id", "client_secret"), ("authority",)),
    "managed_identity": ((), ("client_id", "tenant_id", "msi_endpoint")),
    "workload_identity": (("tenant_id", "client_id"), ("token_file", "authority")),
    "none": ((), ()),
    "emulator": ((), ()),
}
STORAGE_SECRET_FIELDS: tuple[str, ...] = ("key", "sas_token", "client_secret")


@dataclass(frozen=True)
class StorageAccount:
    """``storage.accounts.<name>``: how the jobs authenticate to one Azure storage account."""

    name: str  # the storage account name (the part before the first dot of the host)
    auth: StorageAuth
    endpoint: str = "dfs.core.windows.net"  # host suffix: dfs.core.windows.net (abfss), blob.core.windows.net (wasbs)
    key: str | None = field(default=None, repr=False)  # account_key
    sas_token: str | None = field(default=None, repr=False)  # sas: a fixed token
    sas_provider: str | None = None  # sas: a SASTokenProvider class name
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)  # service_principal
    authority: str = "https://login.microsoftonline.com"  # Microsoft Entra ID authority host
    msi_endpoint: str | None = None  # managed_identity: token endpoint (default: the instance metadata service)
    token_file: str | None = None  # workload_identity: federated token file (default: the AKS one)

    def secrets(self) -> tuple[str, ...]:
        return tuple(v for v in (self.key, self.sas_token, self.client_secret) if v)


@dataclass(frozen=True)
class Config:
    lake: LakeConfig
    checkpoints_root: str
    kafka: KafkaConfig
    bulk: BulkConfig
    sources: tuple[tuple[str, SourceConfig], ...]
    stream: StreamConfig = field(default_factory=StreamConfig)
    storage: tuple[StorageAccount, ...] = ()
    catalog: CatalogConfig | None = None
    # Values read through ${file:...} or ${secret:...}: secrets wherever they are used.
    resolved_secrets: tuple[str, ...] = field(default=(), repr=False)

    def source(self, name: str) -> SourceConfig:
        for key, source in self.sources:
            if key == name:
                return source
        from lib.errors import ConfigError

        known = ", ".join(k for k, _ in self.sources) or "none"
        raise ConfigError("sources", f"unknown source {name!r} (configured: {known})")

    def secrets(self) -> tuple[str, ...]:
        """Every secret value in the config, for redaction of logs and error messages."""
        values = [s.connection.password for _, s in self.sources]
        values += [s.cdc.connect_password for _, s in self.sources if s.cdc and s.cdc.connect_password]
        values += list(self.kafka.secrets())
        values += [v for k, v in self.lake.spark_conf if _looks_secret(k)]
        values += [v for account in self.storage for v in account.secrets()]
        values += list(self.resolved_secrets)
        return tuple(v for v in values if v)


def _by_table(entries: tuple[tuple[str, T], ...], schema: str, table: str, default: T) -> T:
    """The entry keyed ``"schema.table"`` in a per-table settings list, else ``default``."""
    return dict(entries).get(f"{schema}.{table}", default)


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in ("secret", "password", "key", "token", "sas"))
