"""Write the Oracle and SQL Server Debezium event fixtures (tests/fixtures/debezium/{oracle,sqlserver}/).

Built from Debezium 3.2's documented envelopes (https://debezium.io/documentation/reference/3.2/connectors/oracle.html
and .../sqlserver.html, "Data change events": key, value with before / after / source / op / ts_ms,
tombstones after deletes, primary-key changes as a delete + tombstone + create, truncate events, the
LOB placeholder ``__debezium_unavailable_value``), with field schemas from
lib/dialects/<dialect>/cdc_fields.py. Each event file is a list of Kafka records
``{"topic", "partition", "offset", "headers", "key", "value"}`` in two forms: ``<event>.json`` with the
schema block (schemas.enable=true) and ``<event>.compact.json`` without (schemas.enable=false). Each
file's ``expected.json`` holds the lake rows the stream must end with after all events, in the bulk
path's types (rendered as text). Run: ``.venv/bin/python scripts/debezium_fixtures.py``; the unit
tests check the files are this script's output.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.dialects.base import Column  # noqa: E402
from lib.dialects.oracle.catalog import source_type as ora_type  # noqa: E402
from lib.dialects.oracle.cdc_fields import debezium_field as ora_field  # noqa: E402
from lib.dialects.sqlserver.catalog import source_type as mss_type  # noqa: E402
from lib.dialects.sqlserver.cdc_fields import debezium_field as mss_field  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "debezium"
UNAVAILABLE = "__debezium_unavailable_value"


def ora_col(name: str, data_type: str, precision: int | None = None, scale: int | None = None, nullable: bool = True, char_length: int | None = None) -> Column:
    info = (("data_type", data_type), ("type_owner", None), ("precision", precision), ("scale", scale), ("char_length", char_length))
    return Column(name, ora_type(data_type, precision, scale, char_length), nullable, 1, info)


def mss_col(name: str, base: str, max_length: int, precision: int, scale: int, nullable: bool = True) -> Column:
    info = (("base_type", base), ("max_length", max_length), ("precision", precision), ("scale", scale))
    return Column(name, mss_type(base, max_length, precision, scale), nullable, 1, info)


ORACLE_COLUMNS = [
    ora_col("ID", "NUMBER", 10, 0, nullable=False),
    ora_col("NAME", "VARCHAR2", char_length=100),
    ora_col("BALANCE", "NUMBER", 12, 2),
    ora_col("RATING", "NUMBER"),
    ora_col("BORN", "DATE"),
    ora_col("UPDATED", "TIMESTAMP(6)", scale=6),
    ora_col("SEEN", "TIMESTAMP(6) WITH TIME ZONE", scale=6),
    ora_col("TRIAL", "INTERVAL DAY(2) TO SECOND(6)", 2, 6),
    ora_col("NOTES", "CLOB"),
    ora_col("PHOTO", "BLOB"),
]
ORACLE_NEW_COLUMN = ora_col("TIER", "VARCHAR2", char_length=10)

SQLSERVER_COLUMNS = [
    mss_col("id", "int", 4, 10, 0, nullable=False),
    mss_col("name", "nvarchar", 200, 0, 0),
    mss_col("balance", "money", 8, 19, 4),
    mss_col("small", "tinyint", 1, 3, 0),
    mss_col("born", "date", 3, 10, 0),
    mss_col("updated", "datetime2", 8, 27, 7),
    mss_col("seen", "datetimeoffset", 10, 34, 7),
    mss_col("opens", "time", 5, 16, 7),
    mss_col("guid", "uniqueidentifier", 16, 0, 0),
    mss_col("active", "bit", 1, 1, 0),
]
SQLSERVER_NEW_COLUMN = mss_col("tier", "nvarchar", 20, 0, 0)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Oracle values as Debezium 3.2.3 encodes them under the connector settings (NUMBER(10,0) as a string:
# decimal.handling.mode=string), with the lake value the bulk path reads for the same row.
ORACLE_ROW_1 = {
    "ID": "1", "NAME": "Ada", "BALANCE": "1234.50", "RATING": "0.000012345678901234567", "BORN": 946771200000,  # 2000-01-02 00:00:00
    "UPDATED": 1709288130123456, "SEEN": "2024-03-01T10:15:30.123456+02:00", "TRIAL": "P0Y0M3DT4H5M6.5S", "NOTES": "first note", "PHOTO": b64("\x89PNG"),
}  # fmt: skip
ORACLE_ROW_1_UPDATED = {**ORACLE_ROW_1, "BALANCE": "99.99", "NAME": "Ada L.", "NOTES": UNAVAILABLE, "PHOTO": b64(UNAVAILABLE)}
ORACLE_ROW_2 = {**ORACLE_ROW_1, "ID": "2", "NAME": "Bob", "RATING": None, "TRIAL": "P0Y0M-1DT-2H0M0S", "NOTES": None, "PHOTO": None}

SQLSERVER_ROW_1 = {
    "id": 1, "name": "Ada", "balance": "1234.5000", "small": 255, "born": 10958,  # 2000-01-02
    "updated": 1709288130123456700, "seen": "2024-03-01T10:15:30.1234567+02:00", "opens": 34200000000,  # 09:30
    "guid": "6F9619FF-8B86-D011-B42D-00C04FC964FF", "active": True,
}  # fmt: skip
SQLSERVER_ROW_1_UPDATED = {**SQLSERVER_ROW_1, "balance": "99.9900", "name": "Ada L."}
SQLSERVER_ROW_2 = {**SQLSERVER_ROW_1, "id": 2, "name": "Bob", "small": 0, "active": False, "opens": 45296789012}  # 12:34:56.789012


def envelope_schema(prefix: str, table_name: str, fields: list[dict[str, Any]], source_fields: list[dict[str, Any]]) -> dict[str, Any]:
    value = {"type": "struct", "fields": fields, "optional": True, "name": f"{prefix}.{table_name}.Value"}
    return {
        "type": "struct",
        "optional": False,
        "name": f"{prefix}.{table_name}.Envelope",
        "version": 2,
        "fields": [
            {**value, "field": "before"},
            {**value, "field": "after"},
            {"type": "struct", "fields": source_fields, "optional": False, "name": f"io.debezium.connector.{source_fields[1]['default']}.Source", "field": "source"},
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
        ],
    }


def _str(name: str, optional: bool = True, default: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "optional": optional, "field": name}
    if default is not None:
        out["default"] = default
    return out


ORACLE_SOURCE_FIELDS = [
    _str("version", False), _str("connector", False, "oracle"), _str("name", False), {"type": "int64", "optional": False, "field": "ts_ms"},
    _str("snapshot"), _str("db", False), _str("schema", False), _str("table", False), _str("txId"), _str("scn"), _str("commit_scn"),
    _str("lcr_position"), _str("rs_id"), {"type": "int32", "optional": True, "field": "ssn"}, {"type": "int32", "optional": True, "field": "redo_thread"},
    _str("user_name"), _str("row_id"),
]  # fmt: skip
SQLSERVER_SOURCE_FIELDS = [
    _str("version", False), _str("connector", False, "sqlserver"), _str("name", False), {"type": "int64", "optional": False, "field": "ts_ms"},
    _str("snapshot"), _str("db", False), _str("schema", False), _str("table", False), _str("change_lsn"), _str("commit_lsn"),
    {"type": "int64", "optional": True, "field": "event_serial_no"},
]  # fmt: skip


class Builder:
    """Kafka records of one connector's topic for one table, numbered by offset."""

    def __init__(self, kind: str, prefix: str, topic: str, table: str, columns: list[Column], field_of: Any, key: str, db: str, schema: str) -> None:
        self.kind, self.prefix, self.topic, self.table = kind, prefix, topic, table
        self.columns, self.field_of, self.key, self.db, self.schema = list(columns), field_of, key, db, schema
        self.offset = 0
        self.position = 0

    def add_column(self, column: Column) -> None:
        self.columns.append(column)

    def _source(self, ts: int) -> dict[str, Any]:
        self.position += 1
        common = {"version": "3.2.3.Final", "connector": self.kind, "name": self.prefix, "ts_ms": ts, "snapshot": "false", "db": self.db, "schema": self.schema, "table": self.table}
        if self.kind == "oracle":
            scn = 2903400 + 10 * self.position
            return {**common, "txId": f"0a001b00{self.position:08x}", "scn": str(scn), "commit_scn": str(scn + 3), "lcr_position": None, "rs_id": f" 0x0000{self.position:02x}.0001b2c3.0010 ", "ssn": 0, "redo_thread": 1, "user_name": "APP", "row_id": "AAASbhAAMAAAAD1AAA"}
        return {**common, "change_lsn": f"00000027:{0x758 + self.position:08x}:0005", "commit_lsn": f"00000027:{0x758 + self.position:08x}:0009", "event_serial_no": 1}  # the commit record follows the change in the log

    def record(self, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None, key_value: Any, headers: dict[str, str] | None = None, tombstone: bool = False) -> list[dict[str, Any]]:
        fields = [self.field_of(c) for c in self.columns]
        key_field = next(f for f in fields if f["field"] == self.key)
        key_schema = {"type": "struct", "fields": [key_field], "optional": False, "name": f"{self.prefix}.{self.table}.Key"}
        source_fields = ORACLE_SOURCE_FIELDS if self.kind == "oracle" else SQLSERVER_SOURCE_FIELDS
        ts = 1709288130000 + self.offset
        payload = {"before": before, "after": after, "source": self._source(ts), "op": op, "ts_ms": ts + 5}
        out = [
            {
                "topic": self.topic, "partition": 0, "offset": self.offset, "headers": headers or {},
                "key": None if key_value is None else {"schema": key_schema, "payload": {self.key: key_value}},
                "value": {"schema": envelope_schema(self.prefix, f"{self.schema}.{self.table}", fields, source_fields), "payload": payload},
            }
        ]  # fmt: skip
        self.offset += 1
        if tombstone:
            out.append({"topic": self.topic, "partition": 0, "offset": self.offset, "headers": {}, "key": out[0]["key"], "value": None})
            self.offset += 1
        return out


def compact(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same records as a JsonConverter with schemas.enable=false writes them."""
    return [{**r, "key": None if r["key"] is None else r["key"]["payload"], "value": None if r["value"] is None else r["value"]["payload"]} for r in records]


def events(b: Builder, row1: dict[str, Any], row1_updated: dict[str, Any], row2: dict[str, Any], new_column: Column, key: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    out["create"] = b.record("c", None, row1, row1[key])
    out["update"] = b.record("u", row1, row1_updated, row1[key])
    out["lob_placeholder"] = out["update"]  # the update's unchanged LOBs (Oracle) carry the placeholder
    out["create_second"] = b.record("c", None, row2, row2[key])
    out["delete"] = b.record("d", row2, None, row2[key], tombstone=True)
    moved_key = "10" if isinstance(row1[key], str) else 10  # Oracle NUMBER(10,0) arrives as a string
    moved = {**row1_updated, key: moved_key}
    old_key, new_key = json.dumps({key: row1[key]}), json.dumps({key: moved_key})
    out["pk_change"] = b.record("d", row1_updated, None, row1[key], headers={"__debezium.newkey": new_key}, tombstone=True) + b.record(
        "c", None, moved, moved_key, headers={"__debezium.oldkey": old_key}
    )
    out["truncate"] = b.record("t", None, None, None)
    b.add_column(new_column)
    out["schema_change"] = b.record("c", None, {**row2, new_column.name: "gold"}, row2[key])
    return out


def write(kind: str, built: dict[str, list[dict[str, Any]]], expected: dict[str, Any]) -> None:
    folder = OUT / kind
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in built.items():
        if name == "lob_placeholder" and kind == "sqlserver":
            continue  # SQL Server CDC captures whole rows: no placeholders
        (folder / f"{name}.json").write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
        (folder / f"{name}.compact.json").write_text(json.dumps(compact(records), indent=1, sort_keys=True) + "\n")
    (folder / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


def build() -> dict[str, dict[str, list[dict[str, Any]]]]:
    ora = Builder("oracle", "ora", "ora.SHOP.CUSTOMERS", "CUSTOMERS", ORACLE_COLUMNS, ora_field, "ID", "ORCLPDB1", "SHOP")
    mss = Builder("sqlserver", "mss", "mss.shop.dbo.customers", "customers", SQLSERVER_COLUMNS, mss_field, "id", "shop", "dbo")
    return {
        "oracle": events(ora, ORACLE_ROW_1, ORACLE_ROW_1_UPDATED, ORACLE_ROW_2, ORACLE_NEW_COLUMN, "ID"),
        "sqlserver": events(mss, SQLSERVER_ROW_1, SQLSERVER_ROW_1_UPDATED, SQLSERVER_ROW_2, SQLSERVER_NEW_COLUMN, "id"),
    }


# The lake rows after every event in file order (create, update, create_second, delete, pk_change,
# truncate, schema_change): only the schema change's row 2 survives the truncate. Values as the bulk
# path reads them (lib/dialects/<dialect>/types.py), rendered as text.
EXPECTED = {
    "oracle": {
        "after_update_row_1": {
            "ID": "1", "NAME": "Ada L.", "BALANCE": "99.99", "RATING": "0.000012345678901234567", "BORN": "2000-01-02 00:00:00",
            "UPDATED": "2024-03-01 10:15:30.123456", "SEEN": "2024-03-01 08:15:30.123456 UTC", "TRIAL": "+03 04:05:06.500000",
            "NOTES": "first note (kept: the update carried the placeholder)", "PHOTO": "89504e47 (kept)",
        },
        "row_2_interval": "-01 02:00:00.000000",
        "final_rows": [{"ID": "2", "NAME": "Bob", "TIER": "gold"}],
    },
    "sqlserver": {
        "after_update_row_1": {
            "id": "1", "name": "Ada L.", "balance": "99.9900", "small": "255", "born": "2000-01-02", "updated": "2024-03-01 10:15:30.123456",
            "seen": "2024-03-01 08:15:30.123456 UTC", "opens": "09:30:00.000000", "guid": "6F9619FF-8B86-D011-B42D-00C04FC964FF", "active": "true",
        },
        "row_2_opens": "12:34:56.789012",
        "final_rows": [{"id": "2", "name": "Bob", "tier": "gold"}],
    },
}  # fmt: skip


def main() -> None:
    for kind, built in build().items():
        write(kind, built, EXPECTED[kind])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
