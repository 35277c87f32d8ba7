"""The only place a SparkSession is created (jobs/ only; lib/ takes the session as an argument).

On Databricks, or under spark-submit with a session already active, that session is reused; every
session, reused or built, gets the lake's runtime SQL settings (``lib.lake.session_conf``).
Run with plain ``python``, a local session is built: master ``local[2]`` (``SPARK_MASTER`` overrides),
the project's jars from ``jars/``, Delta's extensions, UTC everywhere, quiet logs.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

from _jvm_output import launch_gateway_quietly
from pyspark.sql import SparkSession

from lib.lake.session_conf import lake_sql_conf, secret_redaction_conf

ROOT = Path(__file__).resolve().parent.parent
LOCAL_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dlog4j2.configurationFile={ROOT / 'config' / 'log4j2.properties'}",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.ui.enabled": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.memory": "4g",
    "spark.sql.parquet.compression.codec": "snappy",
    "spark.databricks.delta.properties.defaults.checkpointInterval": "20",
    **secret_redaction_conf(),  # account keys, SAS tokens, client secrets redacted in the UI and event logs
}


def project_jars() -> list[str]:
    return sorted(glob.glob(str(ROOT / "jars" / "*.jar")))


def get_spark(app_name: str, extra_conf: dict[str, str] | None = None) -> SparkSession:
    """The active session if there is one, else a local session configured for this project."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # bind to loopback only
    os.environ["TZ"] = "UTC"  # Python-side datetimes from Spark are rendered in the process time zone
    time.tzset()
    active = SparkSession.getActiveSession()
    if active is None and "DATABRICKS_RUNTIME_VERSION" in os.environ:  # a Databricks task: the cluster's session, as it is
        active = SparkSession.builder.getOrCreate()
    if active is not None:
        return _with_lake_conf(active)
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # under spark-submit: its --master and jars (docs/deploy.md)
    jars = project_jars()
    if not jars and not submitted:
        raise SystemExit("jars/ holds no jars: run `make setup` first")
    builder = SparkSession.builder.appName(app_name)
    if not submitted:  # we choose the master
        builder = builder.master(os.environ.get("SPARK_MASTER", "local[2]"))
    conf = dict(LOCAL_CONF)
    if not submitted:  # under spark-submit the driver's classpath is fixed already: jars come from --jars / spark.jars
        conf["spark.jars"] = ",".join(jars)
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # we start the JVM: its stderr without the noise
        launch_gateway_quietly({**conf, "spark.app.name": app_name, "spark.master": os.environ.get("SPARK_MASTER", "local[2]")})
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    return _with_lake_conf(spark)


def _with_lake_conf(spark: SparkSession) -> SparkSession:
    """The lake's runtime SQL settings (INT64 microsecond timestamps, ...) set on ``spark``, whoever built it."""
    for key, value in lake_sql_conf().items():
        spark.conf.set(key, value)
    return spark
