"""The validation history: one row per table and run, appended to ``<lake.root>/_pipeline/validation``.

Blind appends (no read before write), so concurrent validation runs never conflict.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pyspark.sql import SparkSession

from lib.validate.model import TableReport

SCHEMA_DDL = (
    "run_id STRING, source STRING, schema STRING, table STRING, verdict STRING, reason STRING, "
    "source_rows BIGINT, lake_rows BIGINT, failed_checks ARRAY<STRING>, checks STRING, location STRING, "
    "lake_format STRING, started_at TIMESTAMP, finished_at TIMESTAMP"
)


def validation_path(root: str) -> str:
    return f"{root.rstrip('/')}/_pipeline/validation"


def history_rows(run_id: str, source: str, lake_format: str, started: datetime, finished: datetime, tables: Sequence[TableReport]) -> list[tuple[Any, ...]]:
    """Rows in SCHEMA_DDL's column order (pure)."""
    return [
        (
            run_id,
            source,
            t.schema,
            t.table,
            t.verdict,
            t.reason,
            t.source_rows,
            t.lake_rows,
            [c.name for c in t.checks if c.failed],
            json.dumps([c.as_dict() for c in t.checks], default=str, ensure_ascii=False),
            t.location,
            lake_format,
            started,
            finished,
        )
        for t in tables
    ]


def append_history(spark: SparkSession, root: str, rows: list[tuple[Any, ...]]) -> str:
    path = validation_path(root)
    if rows:
        spark.createDataFrame(rows, SCHEMA_DDL).write.format("delta").mode("append").option("mergeSchema", "true").save(path)
    return path
