"""Which small tables delta-rs commits, and with what table properties and schema (lib/bulk/arrow_writer.py)."""

from __future__ import annotations

import pyarrow as pa

from lib.bulk.arrow_writer import nullable_schema, unsupported_reason
from lib.lake.local_writer import delta_table_exists, local_path, table_properties


def test_only_new_delta_tables_on_local_paths_without_column_mapping():
    assert unsupported_reason("delta", "/lake/shop/public/orders", ["id", "MixedCase", "quote\"d"]) is None
    assert unsupported_reason("delta", "file:///lake/shop/public/orders", ["id"]) is None
    assert unsupported_reason("parquet", "/lake/shop/public/orders", ["id"]) == "lake format parquet"
    assert unsupported_reason("delta", "abfss://lake@acct.dfs.core.windows.net/shop/t", ["id"]) == "remote storage"
    assert unsupported_reason("delta", "wasbs://lake@acct.blob.core.windows.net/shop/t", ["id"]) == "remote storage"
    assert unsupported_reason("delta", "/lake/t", ["id", "with space"]) == "column names that need column mapping"


def test_table_properties_are_the_sessions_delta_defaults():
    conf = {
        "spark.databricks.delta.properties.defaults.checkpointInterval": "20",
        "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true",
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",  # a session setting, not a table property
        "spark.sql.shuffle.partitions": "4",
    }
    assert table_properties(conf) == {"delta.checkpointInterval": "20", "delta.enableChangeDataFeed": "true"}
    assert table_properties({}) == {}


def test_local_path_and_existing_table(tmp_path):
    assert local_path("file:///tmp/lake/t") == "/tmp/lake/t" and local_path("/tmp/lake/t") == "/tmp/lake/t"
    assert not delta_table_exists(str(tmp_path / "t"))
    (tmp_path / "t" / "_delta_log").mkdir(parents=True)
    assert delta_table_exists(str(tmp_path / "t")) and delta_table_exists(f"file://{tmp_path}/t")


def test_every_field_and_nested_element_becomes_nullable_as_in_delta_spark():
    strict = pa.schema(
        [
            pa.field("id", pa.int32(), nullable=False),
            pa.field("tags", pa.list_(pa.field("element", pa.string(), nullable=False)), nullable=False),
            pa.field("point", pa.struct([pa.field("x", pa.float64(), nullable=False)])),
            pa.field("attrs", pa.map_(pa.string(), pa.field("value", pa.int64(), nullable=False))),
        ],
        metadata={b"k": b"v"},
    )
    loose = nullable_schema(strict)
    assert [f.nullable for f in loose] == [True, True, True, True]
    assert loose.field("tags").type.value_field.nullable and loose.field("tags").type.value_field.name == "element"
    assert loose.field("point").type.field("x").nullable
    assert loose.field("attrs").type.item_field.nullable
    assert [f.type.id for f in loose] == [f.type.id for f in strict] and loose.metadata == {b"k": b"v"}
