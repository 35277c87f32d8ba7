"""The stream's MERGE by Delta-Spark, by delta-rs (lib/cdc/delta_rs_merge.py) and by Delta-Spark from an
Arrow source (lib/cdc/spark/arrow_merge.py: the rows the direct path decoded, for the tables Spark must
MERGE) on the same rows: the same table afterwards, value by value, for the lake types the stream
writes (a session time zone other than UTC: no timestamp shifts on the way in), and the same counts.
The CDC suites (test_cdc_stream.py, test_cdc_stream_crash.py, test_lake_readers.py) run the stream
end to end with delta-rs MERGEs (the default on a local lake) and, for tables with deletion vectors or
column mapping, Spark's."""

from __future__ import annotations

import shutil
from typing import Any

from lib.cdc import plan as P
from lib.cdc.delta_rs_merge import merge_with_delta_rs, table_reason
from lib.cdc.spark.arrow_merge import merge_rows

COLUMNS = (("id", "int"), ("Mixed`Name", "string"), ("amount", "decimal(12,2)"), ("at", "timestamp"), ("wall", "timestamp_ntz"),
           ("day", "date"), ("raw", "binary"), ("tags", "array<int>"), ("ratio", "double"), ("ok", "boolean"), ("big", "string"))
POS = "CAST({} AS DECIMAL(38,0))"


def _row(i: int, commit: int, change: int, op: str, name: str | None, toast: bool = False) -> str:
    return (f"({i}, {'NULL' if name is None else repr(name)}, CAST({i}.25 AS DECIMAL(12,2)), TIMESTAMP'2024-03-10 02:30:00.{i:06d}', "
            f"TIMESTAMP_NTZ'1900-01-01 00:00:0{i % 10}', DATE'2000-02-29', X'00FF{i:02X}', array({i}, NULL), {i}.5D, {str(i % 2 == 0).upper()}, "
            f"'big{i}', {POS.format(commit)}, {POS.format(change)}, '{op}', {str(toast).upper()})")


def _frame(spark: Any, rows: list[str]) -> Any:
    names = ", ".join(P.q(n) for n, _ in COLUMNS)
    return spark.sql(f"SELECT * FROM VALUES {', '.join(rows)} AS v({names}, `__source_commit_pos`, `__source_change_pos`, `__op`, `__toast_big`)")


def test_delta_rs_merge_leaves_the_table_spark_merge_leaves(spark: Any, tmp_path: Any) -> None:
    target = _frame(spark, [_row(1, 10, 0, "r", "bulk"), _row(2, 10, 0, "r", "bulk"), _row(3, 10, 0, "r", "bulk"), _row(4, 90, 5, "u", "later")])
    target = target.drop("__toast_big").selectExpr("*", "current_timestamp() AS `__ingested_at`")
    by_spark, by_delta_rs, by_arrow = str(tmp_path / "spark"), str(tmp_path / "delta_rs"), str(tmp_path / "arrow")
    target.write.format("delta").save(by_spark)
    shutil.copytree(by_spark, by_delta_rs)
    shutil.copytree(by_spark, by_arrow)
    assert table_reason(by_delta_rs) is None  # a table Spark created, as the bulk load does: delta-rs can write it

    events = _frame(spark, [
        _row(1, 20, 1, "u", "one"),              # replaces a bulk row
        _row(2, 20, 2, "u", "two", toast=True),  # unchanged TOAST value: `big` stays
        _row(3, 20, 3, "d", None),               # deleted
        _row(4, 90, 4, "u", "older"),            # older than the row: ignored
        _row(5, 20, 5, "c", "five", toast=True), # inserted, TOAST placeholder becomes NULL
        _row(6, 20, 6, "d", None),               # delete of an absent key: nothing
    ]).cache()
    spec = P.TableSpec("src", "public", "t", by_spark, ("id",), COLUMNS)
    events.createOrReplaceTempView("merge_writers_events")
    spark_metrics = spark.sql(P.merge_sql(spec, "merge_writers_events", ["big"])).collect()[0].asDict()
    rs_metrics, rs_tombstones = merge_with_delta_rs(P.TableSpec("src", "public", "t", by_delta_rs, ("id",), COLUMNS, merge_by="delta-rs"),
                                                    events, ["big"], deletes=True)
    zone = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "America/New_York")  # where Spark would read a zoneless timestamp as local time
    try:
        arrow_metrics = merge_rows(spark, P.TableSpec("src", "public", "t", by_arrow, ("id",), COLUMNS), events.toArrow(), ["big"], 1)
    finally:
        spark.conf.set("spark.sql.session.timeZone", zone)
    assert {k: int(spark_metrics[k]) for k in rs_metrics} == rs_metrics == arrow_metrics == \
        {"num_inserted_rows": 1, "num_updated_rows": 2, "num_deleted_rows": 1}
    # the deleted keys, as the Spark path takes them from the same rows (the key JSON the tombstone check joins on)
    spark_tombstones = [tuple(r) for r in events.where("__op = 'd'").selectExpr(*P.tombstone_rows_exprs(spec)).collect()]
    assert sorted(rs_tombstones) == sorted(spark_tombstones) == [("public", "t", '{"id":3}', 20, 3), ("public", "t", '{"id":6}', 20, 6)]

    a, b, c = (spark.read.format("delta").load(p).drop("__ingested_at") for p in (by_spark, by_delta_rs, by_arrow))
    assert a.schema == b.schema == c.schema
    assert a.count() == b.count() == c.count() == 4
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0
    assert a.exceptAll(c).count() == 0 and c.exceptAll(a).count() == 0
    rows = {r["id"]: r for r in b.collect()}
    assert rows[2]["big"] == "big2" and rows[5]["big"] is None and rows[4]["Mixed`Name"] == "later"
    stamps = spark.read.format("delta").load(by_delta_rs).where("id IN (1, 4)").orderBy("id").select("__ingested_at").collect()
    assert stamps[0][0] > stamps[1][0]  # the MERGE stamped the rows it changed, not the others
