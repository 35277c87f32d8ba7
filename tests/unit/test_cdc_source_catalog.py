"""The source catalog the stream decodes compact messages with: read once per schema, again when an
event names a column it does not know (a stand-in dialect counts the catalog reads)."""

from __future__ import annotations

import pytest

from lib.cdc.source_catalog import SourceCatalog
from lib.config import parse_config
from lib.dialects.base import Column, Table
from lib.dialects.postgres import PostgresDialect


def column(name: str, source_type: str, typname: str) -> Column:
    return Column(name, source_type, True, 1, (("typname", typname), ("typtype", "b"), ("typcategory", "N"), ("elem_typname", None)))


class CountingDialect(PostgresDialect):
    def __init__(self) -> None:
        self.reads = 0
        self.columns = [column("id", "integer", "int4"), column("amount", "numeric(12,2)", "numeric")]

    def discover(self, conn, schemas):  # type: ignore[override]
        self.reads += 1
        return [Table("public", "orders", tuple(self.columns), ("id",), 10, 0)]


@pytest.fixture
def catalog() -> SourceCatalog:
    raw = {"sources": {"shop": {"type": "postgres", "connection": {"host": "h", "database": "d", "user": "u"}, "schemas": ["public"]}}}
    return SourceCatalog(CountingDialect(), parse_config(raw, {}).source("shop"), max_attempts=1)


def test_fields_come_from_one_catalog_read_per_schema(catalog):
    fields = catalog.fields("public", "orders", {"id": "1", "amount": "2.50"})
    assert fields["id"]["type"] == "int32" and fields["amount"]["parameters"]["__debezium.source.column.scale"] == "2"
    catalog.fields("public", "orders", {"id": "2"})  # a column missing from an event (a delete's key-only image) is no reason to read again
    assert catalog.dialect.reads == 1


def test_an_unknown_column_in_an_event_reads_the_catalog_again_and_gets_the_bulk_paths_type(catalog):
    catalog.fields("public", "orders")
    catalog.dialect.columns.append(column("note", "numeric", "numeric"))  # ALTER TABLE ... ADD COLUMN note numeric
    fields = catalog.fields("public", "orders", {"id": "3", "amount": "1", "note": "7.25"})
    assert catalog.dialect.reads == 2 and "note" in fields
    assert catalog.lake_types("public", "orders") == {"id": "int", "amount": "decimal(12,2)", "note": "string"}  # unmeasured numeric: text


def test_a_table_the_catalog_does_not_have_is_a_lookup_error(catalog):
    with pytest.raises(LookupError, match=r"public\.gone is not in the source catalog of shop"):
        catalog.fields("public", "gone")
