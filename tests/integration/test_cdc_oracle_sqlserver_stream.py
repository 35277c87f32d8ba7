"""Oracle and SQL Server change events through the real stream: Kafka -> Spark -> Delta MERGE (issue 13).

No Oracle or SQL Server server can run here, so the two things that need one are stood in for: the
lake table and its status are written as the bulk path writes them (the dialect's own type mapping,
``column_reads``; one row copied at the snapshot position; a ``bulk/completed`` status event), and
the source catalog the stream reads for compact messages is the fixture table (the dialect's
``discover`` is the only method replaced). Everything else is real: the Debezium event fixtures
(tests/fixtures/debezium/<dialect>/, built from Debezium 3.2's documented envelopes) are produced
into the local Kafka, and the stream (lib.cdc.loop.stream.CdcStream, --available-now) applies them in
small ranges (four messages per apply, so ordering, tombstones and truncates cross applies).

Per dialect, two runs:
1. compact messages: create (already in the copy: at the snapshot position, skipped), update (the
   Oracle LOBs carry Debezium's placeholder: the copied values stay), a second create;
   every column of both rows is compared with the bulk path's value, and the positions stored;
2. delete + tombstone, primary-key change (delete, tombstone, create under the new key), truncate,
   a create carrying a new column (Oracle: compact, the catalog read again; SQL Server: messages with
   schema blocks): the lake ends with exactly that one row, the new column typed as the bulk path would.
Then nothing went to the dead-letter table and the status table shows the last position applied.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.config import load_config
from lib.dialects.base import Table
from lib.dialects.oracle import OracleDialect
from lib.dialects.oracle import cdc_events as ora_events
from lib.dialects.sqlserver import SqlServerDialect
from lib.dialects.sqlserver import cdc_events as mss_events
from lib.dialects.sqlserver.cdc_order import lsn_number
from lib.lake.paths import dead_letter_path
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

from .kafka_events import BOOTSTRAP

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import debezium_fixtures as fx  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "debezium"


class FixtureCatalog:
    """The source catalog as discovery would return it; ``add`` is an ALTER TABLE ... ADD at the source."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def add(self, column: Any) -> None:
        self.table = Table(self.table.schema, self.table.name, (*self.table.columns, column), self.table.primary_key, 1, 0)


def dialect_with_catalog(base: type, catalog: FixtureCatalog) -> Any:
    class FixtureDialect(base):  # type: ignore[misc, valid-type]
        def discover(self, conn: Any, schemas: Any) -> list[Table]:
            return [catalog.table] if catalog.table.schema in schemas else []

    return FixtureDialect()


CASES = {
    "oracle": {
        "dialect": OracleDialect, "columns": fx.ORACLE_COLUMNS, "new": fx.ORACLE_NEW_COLUMN, "schema": "SHOP", "table": "CUSTOMERS",
        "key": "ID", "connection": {"host": "127.0.0.1", "port": 1, "service_name": "ORCLPDB1", "user": "app", "password": "x"},
        "profile": {"RATING": {"max_scale": 21, "max_int_digits": 1, "specials": 0, "non_null": 1}},
        "schema_change_format": "compact",
    },
    "sqlserver": {
        "dialect": SqlServerDialect, "columns": fx.SQLSERVER_COLUMNS, "new": fx.SQLSERVER_NEW_COLUMN, "schema": "dbo", "table": "customers",
        "key": "id", "connection": {"host": "127.0.0.1", "port": 1, "database": "shop", "user": "app", "password": "x"},
        "profile": None, "schema_change_format": "with_schema",
    },
}  # fmt: skip

# Row 1 as the bulk path copies it (Spark values rendered as text, see ``rendered``) and as it must be after
# the update; row 2 after its create. Types: lib/dialects/<dialect>/types.py.
ORACLE_ROW_1 = {
    "ID": "1", "NAME": "Ada", "BALANCE": "1234.50", "RATING": "0.000012345678901234567", "BORN": "2000-01-02 00:00:00",
    "UPDATED": "2024-03-01 10:15:30.123456", "SEEN": "2024-03-01 08:15:30.123456", "TRIAL": "+03 04:05:06.500000",
    "NOTES": "first note", "PHOTO": "89504E47",
}  # fmt: skip
ORACLE_ROW_1_UPDATED = {**ORACLE_ROW_1, "NAME": "Ada L.", "BALANCE": "99.99"}  # NOTES, PHOTO: placeholders, kept
ORACLE_ROW_2 = {**ORACLE_ROW_1, "ID": "2", "NAME": "Bob", "RATING": None, "TRIAL": "-01 02:00:00.000000", "NOTES": None, "PHOTO": None}
SQLSERVER_ROW_1 = {
    "id": "1", "name": "Ada", "balance": "1234.5000", "small": "255", "born": "2000-01-02", "updated": "2024-03-01 10:15:30.123456",
    "seen": "2024-03-01 08:15:30.123456", "opens": "09:30:00.000000", "guid": "6F9619FF-8B86-D011-B42D-00C04FC964FF", "active": "true",
}  # fmt: skip
SQLSERVER_ROW_1_UPDATED = {**SQLSERVER_ROW_1, "name": "Ada L.", "balance": "99.9900"}
SQLSERVER_ROW_2 = {**SQLSERVER_ROW_1, "id": "2", "name": "Bob", "small": "0", "active": "false", "opens": "12:34:56.789012"}
ROWS = {"oracle": (ORACLE_ROW_1, ORACLE_ROW_1_UPDATED, ORACLE_ROW_2), "sqlserver": (SQLSERVER_ROW_1, SQLSERVER_ROW_1_UPDATED, SQLSERVER_ROW_2)}


def records(kind: str, name: str, compact: bool) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / kind / f"{name}{'.compact' if compact else ''}.json").read_text())


def produce(topic: str, batch: list[dict[str, Any]]) -> None:
    """The fixture records into Kafka as Debezium's JsonConverter writes them (key, value, headers);
    the offsets Kafka assigns must be the fixtures' (the positions depend on them)."""
    from confluent_kafka import Producer

    offsets: list[int] = []
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True})
    for r in batch:
        value = r["value"] if r["value"] is None or "schema" not in r["value"] else {"schema": r["value"]["schema"], "payload": r["value"]["payload"]}
        value = None if value is None else json.dumps(value, separators=(",", ":"))  # the schema block first, as JsonConverter writes it
        key = None if r["key"] is None else json.dumps(r["key"], separators=(",", ":"))
        producer.produce(topic, value=value, key=key, headers=list(r["headers"].items()),
                         on_delivery=lambda err, msg: offsets.append(-1 if err else msg.offset()))
        producer.flush(30)
    assert offsets == [r["offset"] for r in batch]


def rendered(spark: Any, path: str) -> list[dict[str, Any]]:
    """The lake table's rows, source columns as text (timestamps in the session zone, UTC; binary as hex), by key."""
    df = spark.read.format("delta").load(path)
    exprs = [f"CAST(hex(`{f.name}`) AS string) AS `{f.name}`" if f.dataType.simpleString() == "binary" else f"CAST(`{f.name}` AS string) AS `{f.name}`"
             for f in df.schema.fields if f.name not in ("__ingested_at",)]
    return sorted((r.asDict() for r in df.selectExpr(*exprs).collect()), key=lambda r: int(r[next(iter(r))]))


def write_copy(spark: Any, kind: str, case: dict[str, Any], dialect: Any, table: Table, path: str, snapshot: int) -> dict[str, str]:
    """The lake table as the bulk load leaves it: the dialect's lake types, row 1 copied at ``snapshot``."""
    reads = dialect.column_reads(table, case["profile"])
    types = {r.name: r.spark_type for r in reads}
    row = ROWS[kind][0]
    exprs = [f"CAST({'unhex' if types[n] == 'binary' else ''}({'NULL' if row[n] is None else repr(row[n])}) AS {types[n]}) AS `{n}`" for n in types]
    exprs += [f"CAST({snapshot} AS decimal(38,0)) AS __source_commit_pos", "CAST(0 AS decimal(38,0)) AS __source_change_pos",
              "'r' AS __op", "current_timestamp() AS __ingested_at"]
    spark.range(1).selectExpr(*exprs).write.format("delta").save(path)
    return types


@pytest.mark.parametrize("kind", ["oracle", "sqlserver"])
def test_fixture_events_through_kafka_spark_and_delta(spark: Any, tmp_path: Path, kind: str) -> None:
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    case = CASES[kind]
    name = f"{kind}_{uuid.uuid4().hex[:6]}"
    prefix = f"t{uuid.uuid4().hex[:8]}"
    raw = {
        "lake": {"root": str(tmp_path / "lake"), "format": "delta"},
        "kafka": {"bootstrap_servers": BOOTSTRAP},
        "checkpoints": {"root": str(tmp_path / "checkpoints")},
        "stream": {"max_offsets_per_trigger": 4, "apply_threads": 1, "retry_backoff_seconds": 0.2, "max_attempts": 2},
        "sources": {name: {"type": kind, "connection": case["connection"], "schemas": [case["schema"]], "cdc": {"topic_prefix": prefix}}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    config = load_config(tmp_path / "config.yaml", env={})
    source = config.source(name)
    catalog = FixtureCatalog(Table(case["schema"], case["table"], tuple(case["columns"]), (case["key"],), 1, 0))
    dialect = dialect_with_catalog(case["dialect"], catalog)
    topic = dialect.cdc_events.topic(prefix, source.connection.database, case["schema"], case["table"])
    fixture_topic = records(kind, "create", True)[0]["topic"]
    assert topic == prefix + fixture_topic[fixture_topic.index(".") :]  # the fixture's topic naming, under this test's prefix

    # the copy: consistent with the create's commit position (the create is in it, the update is not)
    create_source = records(kind, "create", True)[0]["value"]["source"]
    snapshot_text = create_source["commit_scn"] if kind == "oracle" else create_source["commit_lsn"]
    snapshot = dialect.position_number(snapshot_text)
    path = f"{config.lake.root}/{name}/{case['schema']}/{case['table']}"
    lake_types = write_copy(spark, kind, case, dialect, catalog.table, path, snapshot)
    status = StatusStore(spark, config.lake.root)
    status.ensure()
    status.append(StatusEvent(name, case["schema"], case["table"], "bulk", "completed", path, row_count=1, primary_key=(case["key"],),
                              snapshot_position=snapshot_text, snapshot_method="connector-offsets", started_at=datetime.now(UTC)))

    def run() -> None:
        assert CdcStream(spark, config, source, dialect, StreamOptions(available_now=True)).run() == 0
        dead = spark.read.format("delta").load(dead_letter_path(config.lake.root)).select("reason").collect()
        assert not dead, [r[0] for r in dead]  # every event decoded

    # run 1: compact create (skipped), update (LOB placeholders), second create
    batch = [r for n in ("create", "update", "create_second") for r in records(kind, n, True)]
    produce(topic, batch)
    run()
    _, row1_updated, row2 = ROWS[kind]
    expected = [{**row1_updated, "__op": "u", **stored_position(kind, batch[1])}, {**row2, "__op": "c", **stored_position(kind, batch[2])}]
    assert rendered(spark, path) == expected
    assert {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(path).schema.fields if not f.name.startswith("__")} == lake_types

    # run 2: delete + tombstone, PK change, truncate, then a create with a column added at the source
    fmt_compact = case["schema_change_format"] == "compact"
    batch = [r for n in ("delete", "pk_change", "truncate") for r in records(kind, n, True)] + records(kind, "schema_change", fmt_compact)
    produce(topic, batch)
    catalog.add(case["new"])
    run()
    new_name = case["new"].name
    final = {**row2, new_name: "gold", "__op": "c", **stored_position(kind, batch[-1])}
    assert rendered(spark, path) == [final]
    schema = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(path).schema.fields}
    assert schema[new_name] == "string" == dialect.column_reads(catalog.table)[-1].spark_type

    latest = status.latest(name)[(name, case["schema"], case["table"])]
    assert (latest.phase, latest.state, latest.last_error) == ("cdc", "running", None)
    assert latest.cdc_position == "{__source_commit_pos}/{__source_change_pos}".format(**stored_position(kind, batch[-1]))
    assert json.loads(latest.cdc_offsets) == {"0": batch[-1]["offset"] + 1} or json.loads(latest.cdc_offsets) == {0: batch[-1]["offset"] + 1}
    if kind == "sqlserver":
        assert snapshot == lsn_number(snapshot_text)


def stored_position(kind: str, record: dict[str, Any]) -> dict[str, str]:
    """The position columns the lake row of ``record`` must carry (the Python references of the dialect's SQL)."""
    positions = ora_events.positions if kind == "oracle" else mss_events.positions
    commit, change = positions(record["value"].get("payload", record["value"])["source"], record["offset"])
    return {"__source_commit_pos": str(commit), "__source_change_pos": str(change)}


# One value of every type each connector streams: (column, the value's JSON text as Debezium 3.2 sends it
# under the generated connector settings, the bulk path's lake value rendered as text).
ORACLE_VALUES = [
    (fx.ora_col("I", "NUMBER", 10, 0), "1234567890", "1234567890"),
    (fx.ora_col("N", "NUMBER", 12, 2), "-1234.5", "-1234.50"),
    (fx.ora_col("NEG", "NUMBER", 5, -2), "1234500", "1234500"),  # an int32 in the event, decimal(7,0) in the lake
    (fx.ora_col("INT", "NUMBER", None, 0), "123456789012345678901234567890", "123456789012345678901234567890"),
    (fx.ora_col("BF", "BINARY_FLOAT"), "1.5", "1.5"),
    (fx.ora_col("BD", "BINARY_DOUBLE"), "2.25E-10", "2.25E-10"),
    (fx.ora_col("D", "DATE"), "946771199000", "2000-01-01 23:59:59"),
    (fx.ora_col("T3", "TIMESTAMP(3)", scale=3), "1709288130123", "2024-03-01 10:15:30.123"),
    (fx.ora_col("T6", "TIMESTAMP(6)", scale=6), "-1", "1969-12-31 23:59:59.999999"),
    (fx.ora_col("T9", "TIMESTAMP(9)", scale=9), "1709288130123456789", "2024-03-01 10:15:30.123456789"),
    (fx.ora_col("TZ", "TIMESTAMP(6) WITH TIME ZONE", scale=6), "2024-03-01T01:15:30.5-05:00", "2024-03-01 06:15:30.5"),
    (fx.ora_col("TZ9", "TIMESTAMP(9) WITH TIME ZONE", scale=9), "2024-03-01T10:15:30.123456789+02:00", "2024-03-01T08:15:30.123456789Z"),
    (fx.ora_col("LTZ", "TIMESTAMP(6) WITH LOCAL TIME ZONE", scale=6), "2024-03-01T08:15:30.123456Z", "2024-03-01 08:15:30.123456"),
    (fx.ora_col("IYM", "INTERVAL YEAR(2) TO MONTH", 2, 0), "P-2Y-3M0DT0H0M0S", "-02-03"),
    (fx.ora_col("IDS", "INTERVAL DAY(2) TO SECOND(6)", 2, 6), "P0Y0M3DT4H5M6.5S", "+03 04:05:06.500000"),
    (fx.ora_col("V", "VARCHAR2", char_length=40), "h\u00e9llo \"q\"", "h\u00e9llo \"q\""),
    (fx.ora_col("C", "CHAR", char_length=3), "ab ", "ab "),
    (fx.ora_col("CL", "CLOB"), "long text", "long text"),
    (fx.ora_col("R", "RAW", char_length=16), "AQID", "010203"),
    (fx.ora_col("BL", "BLOB"), "iVBORw==", "89504E47"),
    (fx.ora_col("X", "XMLTYPE"), "<a>1</a>", "<a>1</a>"),
    (fx.ora_col("RI", "ROWID"), "AAASbhAAMAAAAD1AAA", "AAASbhAAMAAAAD1AAA"),
]  # fmt: skip
SQLSERVER_VALUES = [
    (fx.mss_col("b", "bit", 1, 1, 0), "true", "true"),
    (fx.mss_col("t", "tinyint", 1, 3, 0), "255", "255"),
    (fx.mss_col("s", "smallint", 2, 5, 0), "-32768", "-32768"),
    (fx.mss_col("i", "int", 4, 10, 0), "2147483647", "2147483647"),
    (fx.mss_col("bi", "bigint", 8, 19, 0), "-9223372036854775808", "-9223372036854775808"),
    (fx.mss_col("r", "real", 4, 24, 0), "1.5", "1.5"),
    (fx.mss_col("f", "float", 8, 53, 0), "2.25", "2.25"),
    (fx.mss_col("d", "decimal", 9, 12, 2), "-123.4", "-123.40"),
    (fx.mss_col("nu", "numeric", 17, 38, 10), "1.0000000001", "1.0000000001"),
    (fx.mss_col("m", "money", 8, 19, 4), "-922337203685477.5808", "-922337203685477.5808"),
    (fx.mss_col("sm", "smallmoney", 4, 10, 4), "12.3400", "12.3400"),
    (fx.mss_col("dt", "date", 3, 10, 0), "-719162", "0001-01-01"),
    (fx.mss_col("tm", "time", 5, 16, 7), "86399999999", "23:59:59.999999"),
    (fx.mss_col("tm3", "time", 4, 12, 3), "45296789000", "12:34:56.789"),
    (fx.mss_col("d1", "datetime", 8, 23, 3), "1709288130123", "2024-03-01 10:15:30.123"),
    (fx.mss_col("sd", "smalldatetime", 4, 16, 0), "1709288100000", "2024-03-01 10:15:00"),
    (fx.mss_col("d2", "datetime2", 8, 27, 7), "-100", "1969-12-31 23:59:59.999999"),  # floored like the JDBC read
    (fx.mss_col("d6", "datetime2", 8, 26, 6), "1709288130123456", "2024-03-01 10:15:30.123456"),
    (fx.mss_col("o", "datetimeoffset", 10, 34, 7), "2024-03-01T10:15:30.123456+02:00", "2024-03-01 08:15:30.123456"),
    (fx.mss_col("u", "uniqueidentifier", 16, 0, 0), "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6F9619FF-8B86-D011-B42D-00C04FC964FF"),
    (fx.mss_col("nv", "nvarchar", -1, 0, 0), "\u65e5\u672c", "\u65e5\u672c"),
    (fx.mss_col("vb", "varbinary", -1, 0, 0), "AQID", "010203"),
    (fx.mss_col("rv", "timestamp", 8, 0, 0), "AAAAAAAAB9E=", "00000000000007D1"),
    (fx.mss_col("x", "xml", -1, 0, 0), "<a>1</a>", "<a>1</a>"),
]  # fmt: skip


@pytest.mark.parametrize("kind", ["oracle", "sqlserver"])
def test_every_streamed_type_decodes_to_the_bulk_value_on_spark(spark: Any, kind: str) -> None:
    """The dialect's event format (lib/dialects/<type>/cdc_events.py) as the stream applies it: field schema
    from the catalog column, value expression for the bulk path's lake type, evaluated by Spark."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    dialect = OracleDialect() if kind == "oracle" else SqlServerDialect()
    cases = ORACLE_VALUES if kind == "oracle" else SQLSERVER_VALUES
    row = spark.createDataFrame([tuple(raw for _, raw, _ in cases)], ", ".join(f"`{c.name}` string" for c, _, _ in cases))
    exprs, oks = [], []
    for column, _, _ in cases:
        lake = dialect.column_reads(Table("S", "T", (column,), (), 1, 0), {column.name: {"max_scale": 0, "max_int_digits": 30, "specials": 0, "non_null": 1}})[0].spark_type
        decoded = dialect.cdc_events.decode_column(dialect.debezium_field(column), lake, f"`{column.name}`")
        exprs.append(f"CAST({'hex' if lake == 'binary' else ''}({decoded.value}) AS string)")
        oks.append(decoded.ok)
    values = row.selectExpr(*exprs).collect()[0]
    ok = row.selectExpr(*oks).collect()[0]
    assert {c.name: v for (c, _, _), v in zip(cases, values, strict=True)} == {c.name: want for c, _, want in cases}
    assert all(ok), [c.name for (c, _, _), good in zip(cases, ok, strict=True) if not good]
