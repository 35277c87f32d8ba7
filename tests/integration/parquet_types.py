"""How the lake's Parquet files physically store timestamps, read from the files' own footers (pyarrow)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def timestamp_columns(root: str | Path, only: set[str] | None = None) -> list[tuple[str, str, str, str]]:
    """(file relative to ``root``, column path, physical type, logical type) of every timestamp column
    (INT96 or a TIMESTAMP logical type) in every data file under ``root`` (``_delta_log`` left out;
    files a Delta table no longer references included), or in the files named in ``only``."""
    base = Path(root)
    found = []
    for file in sorted(base.rglob("*.parquet")):
        if "_delta_log" in file.parts or (only is not None and file.name not in only):
            continue
        schema = pq.ParquetFile(file).schema
        for i in range(len(schema)):
            col = schema.column(i)
            logical = str(col.logical_type)
            if col.physical_type == "INT96" or logical.startswith("Timestamp"):
                found.append((str(file.relative_to(base)), col.path, col.physical_type, logical))
    return found


def not_int64_micros(columns: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """The columns not stored as INT64 microseconds."""
    return [c for c in columns if c[2] != "INT64" or "timeUnit=microseconds" not in c[3]]
