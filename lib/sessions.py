"""What the pipeline needs to know about the session it was given, through public APIs only, the same
on classic Spark and on Spark Connect (lib/ never creates a session: jobs/_session.py does).

- :func:`is_connect`: a Spark Connect session (``SPARK_REMOTE``, Databricks serverless and
  standard-access clusters): no SparkContext, no JVM in this process.
- :func:`child_session`: a session of the same application with its own SQL settings and temporary
  views (``SparkSession.newSession``), carrying every setting of its parent that differs. Classic
  Spark only: pyspark 4.0's Spark Connect client has neither ``newSession`` nor ``cloneSession``;
  callers use the parent itself there (a Connect session runs concurrent queries from several
  threads; the pipeline's temporary views have unique names).
- :func:`app_key`: the Spark application a session belongs to (caches of facts about it).
- :func:`tune`: optional SQL settings (speed only), kept where the platform refuses them (Databricks
  serverless accepts only a short list of settings); :data:`MERGE_SETTINGS`, those of every session that
  MERGEs into lake tables (the CDC stream, ``jobs/validate.py --repair``).
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from lib.fallback import failure_text

log = logging.getLogger(__name__)

# Settings for sessions that MERGE into lake tables (speed only; :func:`tune` keeps those a platform refuses):
MERGE_SETTINGS = {
    "spark.databricks.delta.merge.materializeSource": "none",  # MERGE sources are cached already
    # The MERGE source's window and CASE columns make Catalyst's constraint propagation explode (a minute
    # and more of planning for a 14-column table: Project/Window constraint sets); it only infers filters
    "spark.sql.constraintPropagation.enabled": "false",
}


def is_connect(spark: SparkSession) -> bool:
    """A Spark Connect session (pyspark.sql.connect), not a classic one with a JVM in this process."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def app_key(spark: SparkSession) -> str:
    """The application ``spark`` belongs to (``spark.app.id``, on Connect the server's), for caching."""
    try:
        return str(spark.conf.get("spark.app.id", None) or id(spark))
    except Exception:  # noqa: BLE001 - a session that hides it: this session alone
        return str(id(spark))


def settings_to_copy(parent: dict[str, str], child: dict[str, str]) -> dict[str, str]:
    """The settings of ``parent`` a new session (holding ``child``) lacks or holds otherwise (pure)."""
    return {key: value for key, value in parent.items() if child.get(key) != value}


def child_session(spark: SparkSession, overrides: dict[str, str] | None = None) -> SparkSession | None:
    """A new session of ``spark``'s application with every setting of ``spark`` (the lake's SQL settings,
    storage credentials set at run time, ...) and then ``overrides``; None on Spark Connect, where pyspark
    4.0 cannot make one. Settings a session cannot take (static and core ones) are the same in both
    sessions already and are skipped."""
    if is_connect(spark):
        return None
    child = spark.newSession()
    refused = []
    for key, value in {**settings_to_copy(spark.conf.getAll, child.conf.getAll), **(overrides or {})}.items():
        try:
            child.conf.set(key, value)
        except Exception as exc:  # noqa: BLE001 - static and core settings: the child has them from the SparkContext
            refused.append(f"{key} ({failure_text(exc)})")
    if refused:
        log.debug("child session: settings not copied: %s", "; ".join(refused))
    return child


def tune(spark: SparkSession, settings: dict[str, str]) -> dict[str, str]:
    """Set each of ``settings`` on ``spark`` where the platform lets a session set it; returns those it
    refused (logged once here). For settings that only make things faster: nothing depends on them."""
    refused = {}
    for key, value in settings.items():
        try:
            spark.conf.set(key, value)
        except Exception as exc:  # noqa: BLE001 - e.g. Databricks serverless: [CONFIG_NOT_AVAILABLE]; slower, never wrong
            refused[key] = failure_text(exc)
    if refused:
        log.info("session settings the platform refused (only speed depends on them): %s", "; ".join(f"{k} ({v})" for k, v in refused.items()))
    return refused
