"""Bulk load fidelity: every contract type, odd names, no key, empty tables, gappy and text keys."""

from __future__ import annotations

import os

from lib.bulk.runner import BulkOptions, run_bulk_load

from .compare import assert_lake_equals_source

TYPES_DDL = """
CREATE TYPE {s}.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN {s}.positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE {s}.all_types (
  id integer PRIMARY KEY,
  c_smallint smallint, c_integer integer, c_bigint bigint,
  c_numeric_fixed numeric(12,2), c_numeric_wide numeric(38,10), c_numeric_free numeric, c_numeric_huge numeric,
  c_numeric_nan numeric, c_real real, c_double double precision,
  c_text text, c_varchar varchar(20), c_char char(5), c_bool boolean, c_date date,
  c_ts timestamp, c_ts3 timestamp(3), c_tstz timestamptz, c_time time, c_timetz timetz, c_interval interval,
  c_uuid uuid, c_inet inet, c_cidr cidr, c_macaddr macaddr, c_mood {s}.mood, c_money money,
  c_json json, c_jsonb jsonb, c_bytea bytea, c_domain {s}.positive_int,
  c_int_arr integer[], c_text_arr text[], c_num_arr numeric(6,2)[], c_uuid_arr uuid[], c_ts_arr timestamp[], c_bool_arr boolean[],
  c_bit bit(1), c_bits bit(10), c_bits_long bit(70)
);
INSERT INTO {s}.all_types VALUES
 (1, -32768, -2147483648, -9223372036854775808, -9999999999.99, 1234567890123456789012345678.0123456789, 1.5, 12345678901234567890123456789.123456789012, 'NaN',
  -3.4e38, 1.7976931348623157e308, 'plain', '', 'ab', true, '0001-01-01',
  '1900-01-01 00:00:00', '2024-03-10 02:30:00.123', '1969-12-31 23:59:59.999999+00', '00:00:00', '23:59:59.999999+05:30', '-1 years -2 mons +3 days -04:05:06.789',
  '00000000-0000-0000-0000-000000000000', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', 'sad', -92233720368547758.08,
  '{{"a": 1, "b": [true, null]}}', '{{"z": 1, "a": {{"nested": "ünïcødé 🎉"}}}}', '\\x00ff10', 1,
  '{{1,NULL,-3}}', '{{"a","",NULL,"with \\"quote\\""}}', '{{1.25,NULL}}', '{{00000000-0000-0000-0000-000000000001}}', '{{"2020-02-29 12:00:00"}}', '{{true,false,NULL}}',
  '1', '1000000001', ('1' || repeat('0', 68) || '1')::bit(70)),
 (2, 32767, 2147483647, 9223372036854775807, 9999999999.99, -0.0000000001, -0.000000000000000000001, 0, 1,
  1.17549435e-38, -2.2250738585072014e-308, E'line\\nbreak\\ttab', 'x', 'abcde', false, '9999-12-31',
  '2024-03-31 02:30:00', '1999-12-31 23:59:59.999', '2024-03-10 02:30:00-08', '12:34:56.789012', '00:00:00-08', '1 day 00:00:00.000001',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'happy', 92233720368547758.07,
  '[]', '{{}}', '\\x', 2147483647,
  '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '0', '0000000000', repeat('0', 70)::bit(70)),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 0, 0, 0, 0, 123.456, 1, 2.5, 'NaN', 'Infinity', 'é', ' ', ' ', true, '2000-02-29',
  '2262-04-11 23:47:16.854775', '1677-09-21 00:12:43.145', '2038-01-19 03:14:08+00', '24:00:00', '12:00:00+00', '0',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '0.0.0.0', '0.0.0.0/0', '00:00:00:00:00:00', 'ok', 0,
  'null', 'null', '\\x00', NULL,
  '{{NULL}}', '{{NULL}}', '{{0.00}}', '{{NULL}}', '{{NULL}}', '{{NULL}}', '1', '0000000001', repeat('1', 70)::bit(70));
"""

EXPECTED_LAKE_TYPES = {
    "c_smallint": "smallint", "c_integer": "int", "c_bigint": "bigint",
    "c_numeric_fixed": "decimal(12,2)", "c_numeric_wide": "decimal(38,10)",
    "c_numeric_free": "decimal(22,21)",  # 1 integer digit (123.456 -> 3) ... measured below
    "c_numeric_huge": "string", "c_numeric_nan": "string",
    "c_real": "float", "c_double": "double", "c_text": "string", "c_varchar": "string", "c_char": "string",
    "c_bool": "boolean", "c_date": "date", "c_ts": "timestamp_ntz", "c_ts3": "timestamp_ntz", "c_tstz": "timestamp",
    "c_time": "string", "c_timetz": "string", "c_interval": "string", "c_uuid": "string", "c_inet": "string",
    "c_cidr": "string", "c_macaddr": "string", "c_mood": "string", "c_money": "decimal(19,2)",
    "c_json": "string", "c_jsonb": "string", "c_bytea": "binary", "c_domain": "int",
    "c_int_arr": "array<int>", "c_text_arr": "array<string>", "c_num_arr": "array<decimal(6,2)>",
    "c_uuid_arr": "array<string>", "c_ts_arr": "array<timestamp_ntz>", "c_bool_arr": "array<boolean>",
    "c_bit": "string", "c_bits": "string", "c_bits_long": "string",  # bit(n): PostgreSQL's text, n digits
}
# c_numeric_free holds 1.5, -0.000000000000000000001, 123.456: 3 integer digits and 21 fraction digits
EXPECTED_LAKE_TYPES["c_numeric_free"] = "decimal(24,21)"


def test_every_contract_type_round_trips(spark, source):
    source.execute(TYPES_DDL.format(s=f'"{source.schema}"'))
    config = source.load_config()
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0

    lake = spark.read.format("delta").load(source.lake_path("all_types"))
    types = {f.name: f.dataType.simpleString() for f in lake.schema.fields}
    for column, expected in EXPECTED_LAKE_TYPES.items():
        assert types[column] == expected, f"{column}: lake type {types[column]}, expected {expected}"
    assert [c for c in types if c.startswith("__")] == ["__source_commit_pos", "__source_change_pos", "__op", "__ingested_at"]
    assert assert_lake_equals_source(spark, source, "all_types", key=["id"]) == 4

    # spot checks of meaning, independent of the comparison helper
    row = {r["id"]: r for r in lake.collect()}
    assert row[1]["c_numeric_huge"] == "12345678901234567890123456789.123456789012"  # 41 digits: kept as text
    assert row[1]["c_ts"].isoformat() == "1900-01-01T00:00:00"  # timestamp_ntz: wall clock, no shift
    assert row[2]["c_tstz"].isoformat() == "2024-03-10T10:30:00"  # -08 instant, shown in UTC
    assert row[1]["c_interval"] == "-1 years -2 mons +3 days -04:05:06.789"
    assert (row[1]["c_inet"], row[2]["c_inet"], row[1]["c_cidr"]) == ("192.168.0.1/24", "::1", "10.0.0.0/8")  # as psql shows them
    assert row[2]["c_text"] == "line\nbreak\ttab" and row[1]["c_varchar"] == "" and row[3]["c_varchar"] is None
    assert row[1]["c_jsonb"] == '{"a": {"nested": "ünïcødé 🎉"}, "z": 1}'
    assert bytes(row[1]["c_bytea"]) == b"\x00\xff\x10"
    assert row[1]["c_text_arr"] == ["a", "", None, 'with "quote"']
    assert (row[1]["c_bit"], row[1]["c_bits"], row[2]["c_bits"], row[4]["c_bits_long"]) == ("1", "1000000001", "0000000000", "1" * 70)


def test_quoted_mixed_case_names(spark, source):
    s = source.schema
    source.execute(f'''
        CREATE TABLE "{s}"."Order ""Lines"" 2024" ("Line Id" bigint PRIMARY KEY, "MixedCase" text, "select" int, "dot.ted" text);
        INSERT INTO "{s}"."Order ""Lines"" 2024" SELECT g, 'v' || g, g % 7, 'd' || g FROM generate_series(1, 3000) g;
    ''')
    config = source.load_config(min_rows_to_split=100, rows_per_chunk=1000, partitions=2)
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    assert assert_lake_equals_source(spark, source, 'Order "Lines" 2024', key=["Line Id"]) == 3000


def test_no_primary_key_empty_table_gappy_and_text_keys(spark, source):
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.no_key (a int, b text, c real);
        INSERT INTO {s}.no_key SELECT g % 100, md5(g::text), g / 7.0 FROM generate_series(1, 20000) g;
        INSERT INTO {s}.no_key VALUES (1, 'dup', 1.5), (1, 'dup', 1.5), (NULL, NULL, NULL);
        CREATE TABLE {s}.empty (id int PRIMARY KEY, v text);
        CREATE TABLE {s}.gappy (id bigint PRIMARY KEY, v int);
        INSERT INTO {s}.gappy SELECT -g::bigint * 1000003, g FROM generate_series(1, 3000) g;
        INSERT INTO {s}.gappy SELECT 4000000000000000000 + g, g FROM generate_series(1, 9000) g;
        CREATE TABLE {s}.text_key (code text PRIMARY KEY, v int);
        INSERT INTO {s}.text_key SELECT md5(g::text) || CASE WHEN g % 3 = 0 THEN ' Ü' ELSE 'a' END, g FROM generate_series(1, 8000) g;
    """)
    config = source.load_config(min_rows_to_split=1000, rows_per_chunk=4000, partitions=2)
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    assert assert_lake_equals_source(spark, source, "no_key") == 20003
    assert assert_lake_equals_source(spark, source, "empty", key=["id"]) == 0
    assert assert_lake_equals_source(spark, source, "gappy", key=["id"]) == 12000
    assert assert_lake_equals_source(spark, source, "text_key", key=["code"]) == 8000

    from lib.status.store import StatusStore

    status = StatusStore(spark, source.lake_root).latest(source.name)
    by_table = {k[2]: v for k, v in status.items()}
    assert {t: e.state for t, e in by_table.items()} == {t: "completed" for t in ("no_key", "empty", "gappy", "text_key")}
    assert by_table["gappy"].primary_key == ("id",) and by_table["no_key"].primary_key == ()
    assert by_table["gappy"].chunks_total == 3 and by_table["gappy"].row_count == 12000
    assert by_table["no_key"].plan_data()["split"]["kind"] == "physical"
    assert all(e.snapshot_position and "/" in e.snapshot_position for e in by_table.values())


def test_partitions_are_balanced_on_a_gappy_key(spark, source):
    """Split points come from a sample of the data: huge gaps and negatives still give even ranges."""
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.events (id bigint PRIMARY KEY, v int);
        INSERT INTO {s}.events SELECT -9000000000000000000 + g::bigint * 13, g FROM generate_series(1, 60000) g;
        INSERT INTO {s}.events SELECT g::bigint * g, g FROM generate_series(1, 60000) g;
        INSERT INTO {s}.events SELECT 9000000000000000000 - g, g FROM generate_series(1, 80000) g;
        ANALYZE {s}.events;
    """)
    config = source.load_config(min_rows_to_split=1000, rows_per_chunk=100_000, partitions=4)
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    assert assert_lake_equals_source(spark, source, "events", key=["id"]) == 200_000

    from lib.status.store import StatusStore

    plan = StatusStore(spark, source.lake_root).latest(source.name)[(source.name, source.schema, "events")].plan_data()
    assert plan["split"]["kind"] == "range" and len(plan["chunks"]) == 2
    predicates = [p for chunk in plan["chunks"] for p in chunk]
    sizes = [source.query(f"SELECT count(*) FROM {s}.events WHERE {p}")[0][0] for p in predicates]
    assert sum(sizes) == 200_000 and len(sizes) == 8
    assert max(sizes) < 1.5 * min(sizes), f"unbalanced ranges: {sizes}"


def test_small_table_path_writes_what_the_large_table_path_writes(spark, source, caplog):
    """Small tables are read by the source's Python driver (lib/bulk/direct_read.py) or, where it refuses
    a value, by Spark in a session without code generation (lib/bulk/small_session.py), and committed by
    delta-rs from Arrow (lib/bulk/arrow_writer.py): the same table loaded through the three paths gives
    the same lake schema, the same Parquet column types, and the same values read by Spark and by
    delta-rs, for every contract type."""
    import glob
    import logging

    import pyarrow.parquet as pq

    from lib.bulk.small_session import SMALL_TABLE_CONF, small_table_session
    from lib.lake.session_conf import lake_sql_conf

    from .lake_readers import arrow_rows, assert_same_rows, delta_rs_arrow

    child = small_table_session(spark)
    assert child is not spark
    assert {k: child.conf.get(k) for k in SMALL_TABLE_CONF} == SMALL_TABLE_CONF
    assert {k: child.conf.get(k) for k in lake_sql_conf()} == lake_sql_conf()  # the lake's settings carry over
    assert spark.conf.get("spark.sql.codegen.factoryMode") != "NO_CODEGEN"  # the run's session keeps code generation

    source.execute(TYPES_DDL.format(s=f'"{source.schema}"'))
    paths = {"direct": source.config_dict(cdc=False)}  # 4 rows < min_rows_to_split: the small-table pool, read by psycopg2
    paths["spark-read"] = source.config_dict(cdc=False, small_table_reader="spark")  # read by Spark JDBC, committed by delta-rs
    paths["large"] = source.config_dict(cdc=False, min_rows_to_split=0)  # not small: the run's session and Spark's writer
    locations = {}
    for name, raw in paths.items():
        raw["lake"]["root"] = f"{source.lake_root}_{name}"
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="bulk"):
            assert run_bulk_load(spark, source.load_config(raw), source.name, BulkOptions()) == 0
        read_directly = [r.getMessage() for r in caplog.records if r.getMessage().endswith(".all_types: read directly, 4 rows")]
        assert len(read_directly) == (1 if name == "direct" else 0), (name, read_directly)
        locations[name] = source.lake_path("all_types").replace(source.lake_root, raw["lake"]["root"], 1)

    # a run's time and snapshot position differ from run to run: every other column must be equal
    frames = {n: spark.read.format("delta").load(p).drop("__ingested_at", "__source_commit_pos") for n, p in locations.items()}
    large = frames["large"]
    for name in ("direct", "spark-read"):
        assert frames[name].schema == large.schema, name
        assert frames[name].exceptAll(large).count() == 0 and large.exceptAll(frames[name]).count() == 0 and frames[name].count() == 4, name
    # each writer commits its own way, with the load id as the Delta txn (exactly-once on resume)
    first_commits = {n: json_lines(f"{p}/_delta_log/00000000000000000000.json") for n, p in locations.items()}
    assert "Apache-Spark" in str(first_commits["large"][0]["commitInfo"])
    for name in ("direct", "spark-read"):
        assert "delta-rs" in str(first_commits[name][0]["commitInfo"]), name
        assert [a["txn"]["version"] for a in first_commits[name] if "txn" in a] == [0], name
    # the Parquet schemas below the root group (named spark_schema by Spark, arrow_schema by delta-rs)
    file_schemas = {n: {str(pq.ParquetFile(f).schema).split("\n", 2)[2] for f in glob.glob(f"{p}/*.parquet")} for n, p in locations.items()}
    assert len(file_schemas["direct"]) == 1, file_schemas["direct"]
    assert file_schemas["direct"] == file_schemas["spark-read"] == file_schemas["large"], "the Parquet files' physical schemas differ"
    columns = large.columns
    rows = {n: arrow_rows(delta_rs_arrow(p), columns) for n, p in locations.items()}
    assert len(rows["large"]) == 4
    for name in ("direct", "spark-read"):
        assert_same_rows(rows[name], rows["large"], columns, "id", f"delta-rs: small-table path ({name}) vs large-table path")


def test_direct_reader_leaves_values_it_cannot_give_exactly_to_spark(spark, source, caplog):
    """Infinite and BC dates and timestamps, and a NaN in a bounded numeric, are refused by the direct
    reader (psycopg2 would turn infinity into date.max): that table is read by Spark as before, the
    other small tables of the run still directly, and each lake table equals what Spark alone loads."""
    import logging

    s = f'"{source.schema}"'
    source.execute(
        f"CREATE TABLE {s}.odd_dates (id int PRIMARY KEY, d date, ts timestamp, tstz timestamptz);"
        f"INSERT INTO {s}.odd_dates VALUES (1, 'infinity', '-infinity', 'infinity'), (2, '2000-01-01', '2000-01-01 00:00:00', '2000-01-01 00:00:00+00');"
        f"CREATE TABLE {s}.bc_date (id int PRIMARY KEY, d date); INSERT INTO {s}.bc_date VALUES (1, '0044-03-15 BC'), (2, '2024-02-29');"
        f"CREATE TABLE {s}.nan_numeric (id int PRIMARY KEY, n numeric(10,2)); INSERT INTO {s}.nan_numeric VALUES (1, 'NaN'), (2, 1.5);"
        f"CREATE TABLE {s}.plain (id int PRIMARY KEY, d date, t text); INSERT INTO {s}.plain VALUES (1, '2024-01-01', 'x');"
    )
    roots, codes = {}, {}
    for reader in ("direct", "spark"):
        raw = source.config_dict(cdc=False, small_table_reader=reader)
        raw["lake"]["root"] = roots[reader] = f"{source.lake_root}_{reader}"
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="bulk"):
            codes[reader] = run_bulk_load(spark, source.load_config(raw), source.name, BulkOptions())
        messages = [r.getMessage() for r in caplog.records]
        if reader == "direct":
            assert any(m.endswith(".plain: read directly, 1 rows") for m in messages), messages
            for table in ("odd_dates", "bc_date", "nan_numeric"):
                assert any(f".{table}: read by Spark (the direct reader refuses" in m for m in messages), (table, messages)
                assert not any(m.endswith(f".{table}: read directly, 2 rows") for m in messages), table
    assert codes["direct"] == codes["spark"]
    for table in ("odd_dates", "bc_date", "nan_numeric", "plain"):
        paths = [f"{roots[r]}/{source.name}/{source.schema}/{table}" for r in ("direct", "spark")]
        if not all(os.path.isdir(p) for p in paths):  # a value Spark cannot load fails the table the same way in both runs
            assert not any(os.path.isdir(p) for p in paths), table
            continue
        a, b = (spark.read.format("delta").load(p).drop("__ingested_at", "__source_commit_pos") for p in paths)
        assert a.schema == b.schema and a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0, table


def json_lines(path: str) -> list[dict]:
    import json

    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
