"""Lake tables registered by name: ``<catalog>.<schema>.<table>``, an external table at the lake path.

With ``catalog:`` in the config, every lake table the bulk load completes (and every table the CDC stream
applies) is also registered in the session's catalog: the Hive metastore (``spark_catalog``) with classic
Spark or a Spark Connect server, a Unity Catalog catalog on Databricks. The table stays where the lake
keeps it; the registration only names it, so dropping it (``--fresh-start``) never deletes data, and its
schema is the Delta log's: columns added by the stream are visible by name without a step of ours.

Catalog names are folded to what every catalog accepts: lower case, letters, digits and ``_`` (Unity
Catalog refuses spaces and periods, the Hive metastore lower-cases): ``"Sales Dept"."Order Items"`` of
source ``shop`` with the default template is ``spark_catalog.shop_sales_dept.order_items``. Two tables
folding to one name are refused when the bulk load plans (lib/name_collisions.py).

Pure planning (names, SQL) first; :func:`register` and :func:`unregister` are the thin layer.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession

from lib.config.model import CatalogConfig, Config
from lib.lake.paths import is_uri
from lib.spark_sql import ident, string
from lib.status.record import StatusEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogTable:
    """One lake table as the catalog names it."""

    catalog: str
    schema: str
    table: str
    location: str  # the lake path (a URI or an absolute local path)
    format: str = "delta"  # delta | parquet

    @property
    def schema_name(self) -> str:
        return f"{quote(self.catalog)}.{quote(self.schema)}"

    @property
    def name(self) -> str:
        return f"{self.schema_name}.{quote(self.table)}"


def fold(name: str) -> str:
    """A source name as a catalog object name: lower case, ``[a-z0-9_]`` only (others become ``_``)."""
    return re.sub(r"[^a-z0-9_]", "_", unicodedata.normalize("NFC", name).lower())


def catalog_table(cfg: CatalogConfig, source: str, schema: str, table: str, location: str, fmt: str = "delta") -> CatalogTable:
    """Where ``schema.table`` of ``source`` is registered (``cfg.schema`` is a template of {source}, {schema})."""
    return CatalogTable(cfg.name, fold(cfg.schema.format(source=source, schema=schema)), fold(table), location, fmt)


quote = ident  # a Spark SQL identifier


def create_schema_sql(t: CatalogTable) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {t.schema_name}"


def create_table_sql(t: CatalogTable) -> str:
    """An external table over the lake path: its columns come from the table's own log / files."""
    return f"CREATE TABLE IF NOT EXISTS {t.name} USING {t.format.upper()} LOCATION {string(t.location)}"


def drop_table_sql(t: CatalogTable) -> str:
    """Drops the name only: the table is external, its files stay."""
    return f"DROP TABLE IF EXISTS {t.name}"


def same_location(registered: str, location: str) -> bool:
    """Whether the catalog's location of a table is ``location`` (``file:`` prefixes and trailing ``/`` aside)."""
    def norm(text: str) -> str:
        text = re.sub(r"^file:(//)?", "", text.strip())
        return text.rstrip("/")

    return norm(registered) == norm(location)


def collisions(tables: Iterable[tuple[tuple[str, str], CatalogTable]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(catalog name, the source tables) for every name that two or more source tables fold to."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for source_table, target in tables:
        by_name.setdefault(target.name, []).append(source_table)
    return [(name, sorted(found)) for name, found in sorted(by_name.items()) if len(found) > 1]


def local_session_conf(config: Config, checkpoints_root: str) -> dict[str, str]:
    """Settings of a local session the jobs build when tables are registered in ``spark_catalog``: the
    Hive metastore in Derby under ``<checkpoints.root>/metastore`` (a session's default catalog forgets
    everything when its process ends). Derby serves one process at a time: jobs that run at once need a
    metastore service, the Spark Connect server, or Unity Catalog (docs/reading-the-lake.md)."""
    if config.catalog is None or config.catalog.name != "spark_catalog":
        return {}
    local = checkpoints_root[len("file://"):] if checkpoints_root.startswith("file://") else checkpoints_root
    if is_uri(local):  # checkpoints on object storage: Derby needs a local directory, the working one's
        local = "."
    home = os.path.abspath(local).rstrip("/") + "/metastore"
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home}/metastore_db;create=true",
        "spark.sql.warehouse.dir": f"{home}/warehouse",
    }


def loaded_tables(cfg: CatalogConfig, fmt: str, events: Iterable[StatusEvent]) -> list[CatalogTable]:
    """The catalog names of the tables whose copy completed (the stream keeps them: phase cdc), at their
    lake locations, from the status table's latest event per table."""
    return [catalog_table(cfg, e.source, e.schema, e.table, e.location, fmt)
            for e in events if e.location and (e.phase == "cdc" or e.state == "completed")]


def sync_source(spark: SparkSession, config: Config, source: str, root: str) -> int:
    """Register every loaded table of ``source`` (jobs/bulk_load.py after the copy, jobs/cdc_stream.py at
    start). Returns 0, or 1 after logging why the catalog refused (the lake tables are complete either way)."""
    if config.catalog is None:
        return 0
    from lib.status.factory import open_status_store

    events = open_status_store(spark, root, config.lake.pipeline_writer).latest(source).values()
    try:
        register(spark, loaded_tables(config.catalog, config.lake.format, events))
    except Exception as exc:  # noqa: BLE001 - any catalog error: the data is in the lake; say so and fail the job
        log.error("catalog: registering the tables of %s in %s failed: %s: %s (the lake tables are complete; "
                  "they stay readable by path)", source, config.catalog.name, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return 1
    return 0


def unregister_source(spark: SparkSession, config: Config, source: str, root: str) -> None:
    """Drop the names of the tables of ``source`` (``--fresh-start``, before its lake tables go)."""
    if config.catalog is None:
        return
    from lib.status.factory import open_status_store

    events = open_status_store(spark, root, config.lake.pipeline_writer).latest(source).values()
    tables = [catalog_table(config.catalog, e.source, e.schema, e.table, e.location, config.lake.format) for e in events]
    dropped = unregister(spark, tables)
    log.info("catalog: %d tables of %s unregistered (their files are the fresh start's to delete)", dropped, source)


def register(spark: SparkSession, tables: Sequence[CatalogTable]) -> dict[str, int]:
    """Create or keep the registration of every table; one registered at another location is moved.
    Returns {"created", "kept", "moved"} counts; a failure raises (the caller decides what it costs)."""
    counts = {"created": 0, "kept": 0, "moved": 0}
    for schema_name in sorted({t.schema_name for t in tables}):
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema_name}")
    for t in tables:
        current = _location(spark, t)
        if current is not None and same_location(current, t.location):
            counts["kept"] += 1
            continue
        if current is not None:
            spark.sql(drop_table_sql(t))
            counts["moved"] += 1
        else:
            counts["created"] += 1
        spark.sql(create_table_sql(t))
    if tables:
        log.info("catalog: %d tables registered in %s (%d created, %d kept, %d moved to their lake path)", len(tables),
                 ", ".join(sorted({t.catalog for t in tables})), counts["created"], counts["kept"], counts["moved"])
    return counts


def unregister(spark: SparkSession, tables: Sequence[CatalogTable]) -> int:
    """Drop the names (never the files); returns how many were registered."""
    dropped = 0
    for t in tables:
        if _location(spark, t) is not None:
            spark.sql(drop_table_sql(t))
            dropped += 1
    return dropped


def _location(spark: SparkSession, t: CatalogTable) -> str | None:
    """The registered location of ``t``, or None when the catalog has no such table."""
    if not spark.catalog.tableExists(t.name):
        return None
    rows = spark.sql(f"DESCRIBE TABLE EXTENDED {t.name}").collect()
    for row in rows:
        if str(row[0]).strip() == "Location":
            return str(row[1])
    return ""
