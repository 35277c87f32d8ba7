"""Small tables read by the source's Python driver into Arrow, without Spark.

A small table (read in one piece) costs fixed work per table. Through Spark's JDBC source every table
opens two JDBC connections (Spark's schema query, then the read), each authenticated anew (SCRAM's
PBKDF2 was 16% of the JVM's samples on 100 tables of 100 rows), and plans and runs a Spark job: about
0.1 CPU-s per table on a JVM that is still compiling its own code. Read instead by the dialect's
Python driver over one connection joined to the load's snapshot (``<dialect>/snapshot_reader.py``),
a 100-row table takes milliseconds, and is committed by delta-rs as before (lib/bulk/arrow_writer.py).

The query is the same one Spark would run (the dialect's ``select_sql``, with its casts), and the Arrow
table is the one ``DataFrame.toArrow()`` returns for it: the same column types (built here from the
lake types, :func:`arrow_type`), the same values (the integration fidelity test compares every contract
type loaded both ways), and the pipeline's ``__`` columns. A value the driver cannot give exactly
(PostgreSQL's infinite or BC dates, a NaN in a bounded numeric, a nested array) raises
:class:`DirectReadUnsupported`, and that table is read by Spark as before. So does any other error of
the read (a database error mid-read, an Arrow conversion error, a bug): the reader is an accelerator,
never a new way to fail (lib/fallback.py); Spark's readers join the same exported snapshot, and nothing
is written before the read has returned every row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lib.bulk.reader import ADDED_COLUMNS
from lib.dialects.base import ColumnRead


class DirectReadUnsupported(Exception):
    """A value (or type) the direct reader cannot reproduce exactly: Spark reads the table instead."""


class DirectReaderUnavailable(DirectReadUnsupported):
    """The direct reader is off for the rest of the run (its connection could not be opened or could
    not join the snapshot; said once by the reader): Spark reads every remaining small table."""


_SIMPLE = {
    "smallint": "int16",
    "int": "int32",
    "bigint": "int64",
    "float": "float32",
    "double": "float64",
    "string": "string",
    "boolean": "bool_",
    "binary": "binary",
    "date": "date32",
}
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")


def arrow_type(spark_type: str, time_zone: str) -> Any:
    """The Arrow type Spark's ``toArrow()`` gives a column of Spark DDL type ``spark_type`` (pure).
    ``time_zone``: the session's ``spark.sql.session.timeZone`` (TIMESTAMP columns carry it)."""
    import pyarrow as pa

    t = spark_type.strip().lower()
    if t in _SIMPLE:
        return getattr(pa, _SIMPLE[t])()
    if t == "timestamp":
        return pa.timestamp("us", tz=time_zone)
    if t == "timestamp_ntz":
        return pa.timestamp("us")
    match = _DECIMAL.match(t.replace(" ", ""))
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    if t.startswith("array<") and t.endswith(">"):
        return pa.list_(pa.field("element", arrow_type(t[len("array<") : -1], time_zone)))
    raise DirectReadUnsupported(f"lake type {spark_type}")


def arrow_schema(reads: Sequence[ColumnRead], time_zone: str) -> Any:
    """The schema of a chunk as the Spark path collects it: the columns, then the ``__`` columns
    (``ADDED_COLUMNS``, as lib/bulk/reader.py adds them), every field nullable."""
    import pyarrow as pa

    position = pa.decimal128(38, 0)
    added = (position, position, pa.string(), pa.timestamp("us", tz=time_zone))  # in ADDED_COLUMNS' order
    fields = [pa.field(r.name, arrow_type(r.spark_type, time_zone)) for r in reads]
    return pa.schema(fields + [pa.field(name, kind) for name, kind in zip(ADDED_COLUMNS, added, strict=True)])


def rows_to_arrow(rows: Sequence[Sequence[Any]], reads: Sequence[ColumnRead], position: int, time_zone: str, now: datetime | None = None) -> Any:
    """The rows of one read (tuples in ``reads`` order) as the Arrow table the Spark path would collect:
    the columns typed as the lake's, ``__source_commit_pos`` = ``position``, ``__source_change_pos`` 0,
    ``__op`` 'r' and ``__ingested_at`` = ``now`` (pure). Raises :class:`DirectReadUnsupported` for a
    value Arrow would have to change (e.g. a NaN decimal, a value out of its type's range)."""
    import pyarrow as pa

    schema = arrow_schema(reads, time_zone)
    count = len(rows)
    ingested = (now or datetime.now(UTC)).astimezone(UTC)
    columns = [_column(rows, i, read.name, schema.field(i).type) for i, read in enumerate(reads)]
    added = (Decimal(position), Decimal(0), "r", ingested)  # in ADDED_COLUMNS' order
    columns += [pa.array([value] * count, type=schema.field(name).type) for name, value in zip(ADDED_COLUMNS, added, strict=True)]
    return pa.Table.from_arrays(columns, schema=schema)


def _column(rows: Sequence[Sequence[Any]], index: int, name: str, arrow_type: Any) -> Any:
    import pyarrow as pa

    try:
        return pa.array([_plain(row[index]) for row in rows], type=arrow_type)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise DirectReadUnsupported(f"column {name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _plain(value: Any) -> Any:
    """A driver value as Arrow takes it: ``memoryview`` (PostgreSQL bytea) as bytes; a decimal NaN or
    infinity is refused, not converted."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"decimal {value} has no Arrow value")
    return value
