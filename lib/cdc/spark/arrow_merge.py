"""Spark's MERGE of the rows the Python pass decoded: the ``direct+spark`` path (lib.cdc.route) of the
tables Spark must MERGE (thin layer; the statement is lib.cdc.plan.merge_sql, the Spark path's own).

The Spark path runs three Spark jobs around its MERGE (the Kafka read and summary, the decode statistics,
then the MERGE). Here the direct path's worker has already read the range with the Kafka client, decoded
it with the exact decoders and kept the last event per key (lib.cdc.direct.apply.decode_directly); its
rows arrive as an Arrow table and become the MERGE's source (``spark.createDataFrame``: a local relation,
the same call on classic Spark and Spark Connect), so an apply costs Spark one job, the MERGE, which with
deletion vectors rewrites only the changed rows. The source's key values are known here, so the MERGE's
ON condition also names them (lib.cdc.plan.key_filter): Spark then joins only the target rows holding
them instead of shuffling the whole table.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lib.cdc import plan as P
from lib.cdc.plan import TableSpec

log = logging.getLogger(__name__)


def source_frame(spark: SparkSession, rows: Any) -> DataFrame:
    """The Arrow rows (lib.cdc.direct.events.arrow_rows: the lake columns with their lake types, then the
    ``__`` columns) as a Spark DataFrame. The schema is given, from the Arrow types: a ``timestamp`` column
    arrives zoned (UTC) and stays ``timestamp``; a ``timestamp_ntz`` one arrives without a zone and stays
    ``timestamp_ntz`` whatever the session's ``spark.sql.timestampType`` (left to inference, Spark would
    read it as a local time of the session's zone)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.createDataFrame(rows, schema=from_arrow_schema(rows.schema, prefer_timestamp_ntz=True))


def merge_rows(spark: SparkSession, spec: TableSpec, rows: Any, toastable: Sequence[str], seq: int) -> dict[str, int]:
    """MERGE the Arrow ``rows`` (the range's last event per key) into the table with the Spark path's
    statement; Delta-Spark's counts (num_inserted_rows, num_updated_rows, num_deleted_rows)."""
    started = time.monotonic()
    view = f"cdc_{seq}_{uuid.uuid4().hex[:8]}"
    source_frame(spark, rows).createOrReplaceTempView(view)
    try:
        keys = P.key_filter(spec, rows.column(spec.key_columns[0]).unique().to_pylist()) if spec.key_columns else None
        metrics = spark.sql(P.merge_sql(spec, view, toastable, keys)).collect()[0].asDict()
    finally:
        spark.catalog.dropTempView(view)
    log.debug("%s: %d decoded rows MERGEd by Spark in %.2fs (%s)", spec.name, rows.num_rows, time.monotonic() - started,
              "target rows narrowed to the source's keys" if keys else "every target row joined")
    return {k: int(metrics.get(k) or 0) for k in ("num_inserted_rows", "num_updated_rows", "num_deleted_rows")}
