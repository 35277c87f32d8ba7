"""The session small tables are copied in: the run's session with Spark's code generation off.

A small table (read in one piece, fewer than ``bulk.min_rows_to_split`` rows) costs fixed work per Spark
query, not per row. Profiled on 100-row tables, about a fifth of that was Janino compiling generated code
(whole-stage code for the query, projections and the Delta writer's statistics tracker in every task):
work that pays off over millions of rows and never over a hundred. Small tables therefore run in a child
session (``lib.sessions.child_session``: same SparkContext, same Delta log cache, every setting of the run's session) where
expressions are evaluated by Spark's interpreted implementations, the ones Spark itself falls back to
when generated code does not compile; values are the same (the fidelity tests compare every contract
type loaded this way value by value, with Spark and with delta-rs). Large tables keep the run's session
and its generated code.

Where a child session cannot be made (Spark Connect: pyspark 4.0's client has no ``newSession``; a
platform that refuses these settings) small tables use the run's session: only slower.
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from lib.fallback import failure_text
from lib.sessions import child_session

log = logging.getLogger("bulk")

# Settings of the small-table session on top of every setting of the run's session.
SMALL_TABLE_CONF = {
    "spark.sql.codegen.wholeStage": "false",  # no whole-stage Java code for the query
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",  # interpreted projections and predicates, also in the writer's tasks
}


def small_table_session(spark: SparkSession) -> SparkSession:
    """A child of ``spark`` with :data:`SMALL_TABLE_CONF`; ``spark`` itself where that is not possible."""
    try:
        child = child_session(spark, SMALL_TABLE_CONF)
    except Exception as exc:  # noqa: BLE001 - an optimisation only: fall back to the run's session
        log.info("small tables use the run's session (no child session here: %s)", failure_text(exc))
        return spark
    if child is None:
        log.info("small tables use the run's session (Spark Connect: no child sessions)")
        return spark
    return child
