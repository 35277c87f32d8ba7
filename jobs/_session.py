"""The only place a SparkSession is created (jobs/ only; lib/ takes the session as an argument).

On Databricks, or under spark-submit with a session already active, that session is reused; every
session, reused or built, gets the lake's runtime SQL settings (``lib.lake.session_conf``).
With ``SPARK_REMOTE=sc://host:port`` set, the job is a Spark Connect client of that server: no local
JVM; the server has the jars, Delta and the storage drivers (docs/spark-connect.md; the local one:
``scripts/stack.sh up spark-connect``, configured by :func:`connect_server_conf`).
Else, run with plain ``python``, a local session is built: master ``local[2]`` (``SPARK_MASTER``
overrides), the project's jars from ``jars/``, Delta's extensions, UTC everywhere, quiet logs.
"""

from __future__ import annotations

import glob
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from _jvm_output import launch_gateway_quietly, submitted_conf
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


# What only the local session gets: under spark-submit the driver JVM runs already, with the address, memory
# and UI spark-submit gave it, and a cluster's shuffle width is its operator's to choose.
LOCAL_ONLY = frozenset({
    "spark.driver.host", "spark.driver.bindAddress", "spark.driver.memory", "spark.driver.extraJavaOptions",
    "spark.ui.enabled", "spark.sql.shuffle.partitions",
})


def submit_conf(conf: dict[str, str], given: dict[str, str]) -> dict[str, str]:
    """What the builder sets under spark-submit (pure): the job's settings spark-submit was not ``given``, without
    the local session's own (:data:`LOCAL_ONLY`); whatever spark-submit was given stays as given."""
    return {k: v for k, v in conf.items() if k not in given and k not in LOCAL_ONLY}


# What a Spark Connect client session gets (the server owns every other setting).
CONNECT_SESSION_CONF = {"spark.sql.session.timeZone": "UTC"}


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
    remote = os.environ.get("SPARK_REMOTE")
    if remote:
        return _with_lake_conf(connect_session(remote))
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # under spark-submit: its --master and jars (docs/deploy.md)
    jars = project_jars()
    if not jars and not submitted:
        raise SystemExit("jars/ holds no jars: run `make setup` first")
    builder = SparkSession.builder.appName(app_name)
    if not submitted:  # we choose the master
        builder = builder.master(os.environ.get("SPARK_MASTER", "local[2]"))
    conf = {**LOCAL_CONF, "spark.log.level": os.environ.get("SPARK_LOG_LEVEL", "WARN")}  # as SparkContext.setLogLevel at start
    if not submitted:  # under spark-submit the driver's classpath is fixed already: jars come from --jars / spark.jars
        conf["spark.jars"] = ",".join(jars)
    conf.update(extra_conf or {})
    if submitted:  # spark-submit's --conf, --properties-file and --driver-* stand (docs/deploy.md)
        conf = submit_conf(conf, submitted_conf())
    for key, value in conf.items():
        builder = builder.config(key, value)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # we start the JVM: its stderr without the noise
        launch_gateway_quietly({**conf, "spark.app.name": app_name, "spark.master": os.environ.get("SPARK_MASTER", "local[2]")})
    return _with_lake_conf(builder.getOrCreate())


def connect_session(url: str) -> SparkSession:
    """A Spark Connect session of the server at ``url`` (``sc://host:port[/;param=value...]``), with
    :data:`CONNECT_SESSION_CONF`. A server that does not answer fails at once, naming the address
    (the client's own retries would take minutes)."""
    parts = urlsplit(url)
    if parts.scheme != "sc" or not parts.hostname:
        raise SystemExit(f"SPARK_REMOTE={url!r}: expected sc://host:port (docs/spark-connect.md)")
    address = (parts.hostname, parts.port or 15002)
    try:
        socket.create_connection(address, timeout=10).close()
    except OSError as exc:
        hint = "; start the local one with `bash scripts/stack.sh up spark-connect`" if address[0] in ("127.0.0.1", "localhost", "::1") else ""
        raise SystemExit(f"no Spark Connect server answers at {address[0]}:{address[1]} (SPARK_REMOTE): {exc.strerror or exc}{hint}") from None
    spark = SparkSession.builder.remote(url).getOrCreate()
    for key, value in CONNECT_SESSION_CONF.items():
        spark.conf.set(key, value)
    return spark


def connect_server_conf(root: str, port: int, memory: str) -> dict[str, str]:
    """The properties of the local Spark Connect server (scripts/stack/spark_connect.sh): what a job's local
    session has (:data:`LOCAL_CONF`, the jars of ``jars/``, the lake's SQL settings), on ``local[2]`` with
    ``memory``, listening on 127.0.0.1:``port``, with a Hive metastore in Derby and the warehouse under
    ``root``, and the log4j2 settings ``root``/log4j2.properties."""
    jars = project_jars()
    if not jars:
        raise SystemExit("jars/ holds no jars: run `make setup` first")
    return {
        **LOCAL_CONF,
        **lake_sql_conf(),
        "spark.master": "local[2]",
        "spark.jars": ",".join(jars),
        "spark.driver.memory": memory,
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dlog4j2.configurationFile={root}/log4j2.properties -Dderby.system.home={root}",
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root}/metastore_db;create=true",
        "spark.sql.warehouse.dir": f"{root}/warehouse",
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
    }


def _with_lake_conf(spark: SparkSession) -> SparkSession:
    """The lake's runtime SQL settings (INT64 microsecond timestamps, ...) set on ``spark``, whoever built it."""
    for key, value in lake_sql_conf().items():
        spark.conf.set(key, value)
    return spark
