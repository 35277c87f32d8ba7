"""The session small tables are copied in: the run's session with Spark's code generation off.

A small table (read in one piece, fewer than ``bulk.min_rows_to_split`` rows) costs fixed work per Spark
query, not per row. Profiled on 100-row tables, about a fifth of that was Janino compiling generated code
(whole-stage code for the query, projections and the Delta writer's statistics tracker in every task):
work that pays off over millions of rows and never over a hundred. Small tables therefore run in a child
session (``SparkSession.newSession``: same SparkContext, same Delta log cache, same lake settings) where
expressions are evaluated by Spark's interpreted implementations, the ones Spark itself falls back to
when generated code does not compile; values are the same (the fidelity tests compare every contract
type loaded this way value by value, with Spark and with delta-rs). Large tables keep the run's session
and its generated code.

Where a child session cannot be made (Spark Connect, a platform that refuses these settings) small
tables use the run's session as before: only slower.
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

log = logging.getLogger("bulk")

# Settings of the small-table session on top of every modifiable setting of the run's session.
SMALL_TABLE_CONF = {
    "spark.sql.codegen.wholeStage": "false",  # no whole-stage Java code for the query
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",  # interpreted projections and predicates, also in the writer's tasks
}


def small_table_conf(run_conf: dict[str, str], modifiable: set[str]) -> dict[str, str]:
    """The settings of the small-table session: the run's session's modifiable ones, then ours (pure)."""
    conf = {k: v for k, v in run_conf.items() if k in modifiable}
    conf.update(SMALL_TABLE_CONF)
    return conf


def small_table_session(spark: SparkSession) -> SparkSession:
    """A child of ``spark`` with :data:`SMALL_TABLE_CONF`; ``spark`` itself where that is not possible."""
    try:
        run_conf = spark.conf.getAll
        modifiable = {k for k in run_conf if spark.conf.isModifiable(k)}
        child = spark.newSession()
        for key, value in small_table_conf(run_conf, modifiable).items():
            child.conf.set(key, value)
    except Exception as exc:  # noqa: BLE001 - an optimisation only: fall back to the run's session
        log.info("small tables use the run's session (no child session here: %s)", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return spark
    return child
