"""The Spark halves of the Oracle / SQL Server work, run on real Spark against the Debezium fixtures:

- the decoders' Spark SQL (lib/dialects/<dialect>/cdc_decode.py) give exactly the Python
  references (the unit tests pin those to the bulk path's values) for every fixture value;
- the lake side of the validation checksum (lib/validate/checksum_sql.spark_row_exprs) hashes the
  fixture rows, in their lake types, to the canonical text's md5 computed independently in Python:
  the text the Oracle SQL / T-SQL builders (lib/validate/source_checksum.py) render on the source.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lib.dialects.base import ColumnRead
from lib.dialects.oracle import cdc_decode as ora_decode
from lib.dialects.oracle.cdc_fields import debezium_field as ora_field
from lib.dialects.sqlserver import cdc_decode as mss_decode
from lib.dialects.sqlserver.cdc_fields import debezium_field as mss_field
from lib.errors import SourceError
from lib.validate.checksum_sql import RowSpec, spark_row_exprs

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import debezium_fixtures as fx  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "debezium"


def after_images(kind: str) -> list[dict]:
    out = []
    for name in ("create", "update", "create_second", "pk_change", "schema_change"):
        for record in json.loads((FIXTURES / kind / f"{name}.compact.json").read_text()):
            if record["value"] and record["value"]["after"]:
                out.append(record["value"]["after"])
    return out


def evaluate(spark, raws: list[str | None], expr_of) -> list[str | None]:
    """Evaluate a decode expression over raw JSON texts (as the stream parses fields: strings)."""
    df = spark.createDataFrame([(r,) for r in raws], "raw string")
    return [row[0] for row in df.select(F.expr(expr_of("raw"))).collect()]


def test_oracle_decoders_on_spark_match_the_references(spark):
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    column = {c.name: c for c in fx.ORACLE_COLUMNS}["TRIAL"]
    intervals = [a["TRIAL"] for a in after_images("oracle")] + ["P0Y0M0DT0H0M-0.25S", "P0Y0M12DT23H59M59.999999S"]
    decoded = evaluate(spark, intervals, lambda raw: ora_decode.decode_column(ora_field(column), "string", raw, column).value)
    assert decoded == [ora_decode.interval_text(v, False, 2, 6) for v in intervals]
    assert "-01 02:00:00.000000" in decoded and "+03 04:05:06.500000" in decoded
    ym = fx.ora_col("YM", "INTERVAL YEAR(2) TO MONTH", 2, 0)
    values = ["P2Y3M0DT0H0M0S", "P-2Y-3M0DT0H0M0S", "P0Y11M0DT0H0M0S"]
    assert evaluate(spark, values, lambda raw: ora_decode.decode_column(ora_field(ym), "string", raw, ym).value) == ["+02-03", "-02-03", "+00-11"]
    t9 = fx.ora_col("T9", "TIMESTAMP(9)", scale=9)
    nanos = ["1709288130123456789", "-1", "0", "4102444799999999999"]
    assert evaluate(spark, nanos, lambda raw: ora_decode.decode_column(ora_field(t9), "string", raw, t9).value) == [
        ora_decode.nano_timestamp_text(int(n), 9) for n in nanos
    ]
    tz9 = fx.ora_col("TZ9", "TIMESTAMP(9) WITH TIME ZONE", scale=9)
    zoned = ["2024-03-01T10:15:30.123456789+02:00", "2024-03-01T00:15:30Z", "2024-03-01T00:15:30.5-05:30"]
    assert evaluate(spark, zoned, lambda raw: ora_decode.decode_column(ora_field(tz9), "string", raw, tz9).value) == [
        ora_decode.zoned_utc_text(z, 9) for z in zoned
    ]
    ident = {c.name: c for c in fx.ORACLE_COLUMNS}["ID"]
    ids = [str(a["ID"]) for a in after_images("oracle")]
    decoded_ids = evaluate(spark, ids, lambda raw: ora_decode.decode_column(ora_field(ident), "decimal(10,0)", raw, ident).value)
    assert decoded_ids == [Decimal(i) for i in ids]
    assert evaluate(spark, [ora_decode.UNAVAILABLE_BASE64, "AAEC"], lambda raw: ora_decode.is_unavailable_sql(raw, {"type": "bytes"})) == [True, False]


def test_sqlserver_decoders_on_spark_match_the_references(spark):
    columns = {c.name: c for c in fx.SQLSERVER_COLUMNS}
    opens = columns["opens"]
    micros = [str(a["opens"]) for a in after_images("sqlserver")] + ["0", "86399999999"]
    for scale in (7, 3, 0):
        col = fx.mss_col("opens", "time", 5, 16, scale)
        decoded = evaluate(spark, micros, lambda raw, col=col: mss_decode.decode_column(mss_field(col), "string", raw, col).value)
        assert decoded == [mss_decode.time_text(int(m), scale) for m in micros]
    assert mss_decode.time_text(int(micros[0]), 7) == "09:30:00.000000" and opens.info("scale") == 7
    updated = columns["updated"]
    nanos = [str(a["updated"]) for a in after_images("sqlserver")] + ["-100", "-1000"]
    decoded = evaluate(spark, nanos, lambda raw: mss_decode.decode_column(mss_field(updated), "timestamp_ntz", raw, updated).value)
    assert [micros_since_epoch(d) for d in decoded] == [mss_decode.nano_timestamp_micros(int(n)) for n in nanos]


def micros_since_epoch(wall: datetime) -> int:
    return (wall - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def canonical(value, lake: str) -> str | None:
    """lib/validate/render.py's canonical text, computed in plain Python."""
    if value is None:
        return None
    if lake.startswith("decimal("):
        scale = int(lake[:-1].split(",")[1])
        return f"{Decimal(value):.{scale}f}"
    if lake in ("int", "bigint", "smallint"):
        return str(int(value))
    if lake == "boolean":
        return "true" if value else "false"
    if lake == "string":
        return value
    if lake == "timestamp_ntz":
        return str(micros_since_epoch(value))
    if lake == "binary":
        return bytes(value).hex()
    raise AssertionError(lake)


def field(text: str | None) -> str:
    return "N" if text is None else f"{len(text)}:{text}"


def test_lake_side_checksum_matches_the_canonical_text(spark):
    # the Oracle fixture's rows as the bulk path lands them (lib/dialects/oracle/types.py)
    rows = [
        (Decimal(1), "Ada L.", Decimal("99.99"), datetime(2000, 1, 2), datetime(2024, 3, 1, 10, 15, 30, 123456), "+03 04:05:06.500000", bytes.fromhex("89504e47")),
        (Decimal(2), "Bob", Decimal("1234.50"), None, datetime(1969, 12, 31, 23, 59, 59, 999999), "-01 02:00:00.000000", None),
        (Decimal(3), "", Decimal("-0.01"), datetime(1900, 1, 1), None, None, b""),
    ]
    types = [("ID", "decimal(10,0)"), ("NAME", "string"), ("BALANCE", "decimal(12,2)"), ("BORN", "timestamp_ntz"), ("UPDATED", "timestamp_ntz"), ("TRIAL", "string"), ("PHOTO", "binary")]
    df = spark.createDataFrame(rows, ", ".join(f"`{n}` {t}" for n, t in types))
    spec = RowSpec(tuple(ColumnRead(n, n, t) for n, t in types), ("ID",), 2)
    exprs = spark_row_exprs(spec)
    got = {r["k"]: (r["b"], int(r["h"])) for r in df.select(F.expr(exprs.bucket).alias("b"), F.expr(exprs.key).alias("k"), F.expr(exprs.hash).alias("h")).collect()}
    for row in rows:
        texts = [canonical(v, t) for v, (_, t) in zip(row, types, strict=True)]
        row_text = "|".join(field(t) for t in texts)
        key_text = field(texts[0])
        expected_hash = int(hashlib.md5(row_text.encode()).hexdigest()[:15], 16)
        assert got[key_text] == (hashlib.md5(key_text.encode()).hexdigest()[:2], expected_hash), row


def test_jdbc_planning_queries_run_from_worker_threads(spark, source):
    """The planning path Oracle and SQL Server use (lib/dialects/jdbc.py), run for real against the
    local PostgreSQL over its JDBC driver, from a thread pool as the bulk load plans tables."""
    from concurrent.futures import ThreadPoolExecutor

    from lib.dialects import jdbc
    from tests.integration.conftest import PG

    source.execute(f'CREATE TABLE "{source.schema}".k (id int PRIMARY KEY); INSERT INTO "{source.schema}".k SELECT generate_series(1, 50)')
    url = f"jdbc:postgresql://{PG['host']}:{PG['port']}/{source.db}"
    props = {"driver": "org.postgresql.Driver", "user": PG["user"], "password": PG["password"], "fetchsize": "1000"}
    query = f'SELECT count(*) AS n, max(id) AS m FROM "{source.schema}".k'

    def run(_: int) -> list:
        return jdbc.run_query(url, props, query, where="postgres (JDBC)", transient=lambda _line: True, session_init="SET TimeZone = 'UTC'")

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, range(4)))
    assert results == [[(50, 50)]] * 4
    bad = {**props, "password": "wrong-password-x"}
    with pytest.raises(SourceError) as info:
        jdbc.run_query(url, bad, query, where=f"postgres at {PG['host']}:{PG['port']}", transient=lambda line: "authentication" not in line)
    assert str(info.value).startswith(f"postgres at {PG['host']}:{PG['port']}: FATAL: password authentication failed")
    assert "wrong-password-x" not in str(info.value) and not info.value.transient
