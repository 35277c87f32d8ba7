"""Which way one table's apply goes, and why (pure: decided from the table's spec and the stream's settings).

Three paths apply a range of a table's events (docs/cdc-stream.md, "Who reads the events"):

- ``direct``: the Python pass reads and decodes the range (lib.cdc.direct) and delta-rs MERGEs it: no
  Spark job. For the tables delta-rs MERGEs (``spec.merge_by == "delta-rs"``).
- ``direct+spark``: the same Python pass reads and decodes the range, and Spark runs only the MERGE of
  its rows (lib.cdc.spark.arrow_merge): one Spark job per apply. For the plain mirrors Spark must MERGE
  (a lake delta-rs cannot write, deletion vectors, column mapping, a table over
  ``stream.merge_writer_max_table_mb``).
- ``spark``: Spark reads the range from Kafka, decodes it and MERGEs it (lib.cdc.spark): everything
  else, and every range the Python pass declines or fails on (then nothing was committed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lib.cdc.plan import TableSpec

Path = Literal["direct", "direct+spark", "spark"]
PATHS: tuple[Path, ...] = ("direct", "direct+spark", "spark")


@dataclass(frozen=True)
class Route:
    """The path an apply takes first and why (said in the apply's log line)."""

    path: Path
    reason: str


def route(spec: TableSpec, python_reader: bool) -> Route:
    """The path of the table's next apply (pure). ``python_reader``: the stream reads events with the
    Python pass (``stream.event_reader: direct``, the default). A ``direct`` or ``direct+spark`` range
    the pass cannot take goes to ``spark`` before anything is written."""
    if not python_reader:
        return Route("spark", "stream.event_reader is spark")
    if spec.event_format.name != "postgres":
        return Route("spark", f"{spec.event_format.name} events are decoded by Spark")
    if spec.merge_by == "delta-rs":
        return Route("direct", "decoded in Python, MERGEd by delta-rs")
    why = spec.spark_merge_reason or "Spark MERGEs the table"
    if not spec.history.plain:
        mode = "history scd2" if spec.history.scd2 else "soft deletes"
        return Route("spark", f"{mode} on a table Spark MERGEs ({why})")
    return Route("direct+spark", f"decoded in Python, MERGEd by Spark: {why}")
