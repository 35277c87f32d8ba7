"""Storage operations through Hadoop's FileSystem, so they work on local disk and on ADLS (abfss://)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql.types import StructType


def apply_storage_conf(spark: SparkSession, conf: Iterable[tuple[str, str]]) -> None:
    """Session-level settings for the lake's file system (e.g. ADLS Gen2 OAuth keys from ``lake.spark_conf``)."""
    for key, value in conf:
        spark.conf.set(key, value)


def apply_hadoop_settings(spark: SparkSession, settings: Mapping[str, str]) -> None:
    """Put Hadoop file-system settings (e.g. ABFS auth from ``storage:``) into a running session: its
    Hadoop configuration (RDD-level reads and writes, Structured Streaming checkpoints) and its SQL conf
    (``sessionState.newHadoopConf``: DataFrame reads and writes, Delta). On a session built by
    ``jobs/_session.py`` they are in already as ``spark.hadoop.*``; a reused session (Databricks, an
    existing spark-submit session) gets them here."""
    if not settings:
        return
    try:
        hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
    except Exception:  # noqa: BLE001 - no SparkContext on Spark Connect / Databricks shared clusters
        hadoop_conf = None
    for key, value in settings.items():
        if hadoop_conf is not None:
            hadoop_conf.set(key, value)
        spark.conf.set(key, value)


def _fs_and_path(spark: SparkSession, path: str):  # type: ignore[no-untyped-def]
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark._jsparkSession.sessionState().newHadoopConf()
    return hadoop_path.getFileSystem(conf), hadoop_path


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, hadoop_path = _fs_and_path(spark, path)
    return bool(fs.exists(hadoop_path))


def delete_path(spark: SparkSession, path: str) -> bool:
    """Delete ``path`` recursively; False when it did not exist."""
    fs, hadoop_path = _fs_and_path(spark, path)
    if not fs.exists(hadoop_path):
        return False
    return bool(fs.delete(hadoop_path, True))


def is_delta_table(spark: SparkSession, path: str) -> bool:
    return path_exists(spark, f"{path.rstrip('/')}/_delta_log")


def ensure_delta_table(spark: SparkSession, path: str, ddl: str) -> bool:
    """Create an empty Delta table with columns ``ddl`` at ``path`` unless one is there; True when
    created. A metadata-only commit: no Spark job, unlike writing an empty DataFrame."""
    if is_delta_table(spark, path):
        return False
    DeltaTable.createIfNotExists(spark).location(path).addColumns(StructType.fromDDL(ddl)).execute()
    return True


def read_text(spark: SparkSession, path: str) -> str:
    """The whole content of a (small) file as UTF-8 text."""
    fs, hadoop_path = _fs_and_path(spark, path)
    stream = fs.open(hadoop_path)
    try:
        return str(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write (overwrite) a small UTF-8 file through Hadoop's FileSystem: local, abfss://, wasbs://."""
    fs, hadoop_path = _fs_and_path(spark, path)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
