"""Storage operations of the lake (local disk, ADLS / Blob, ``dbfs:/``) through public APIs only, the same
on classic Spark and on Spark Connect:

- reading (whether a path or a Delta table is there, a small file's text): Spark, with the session's
  own file systems and credentials;
- creating an empty Delta table: SQL (``CREATE TABLE IF NOT EXISTS delta.`path```);
- deleting a path, writing a small file: Spark has no public API for these; this process does them
  (lib/lake/pyfs.py: local disk, Azure with the session's storage settings, ``dbutils`` on Databricks);
- storage settings: set into the session (``spark.conf``), said at WARNING where a session refuses them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from lib.fallback import failure_text
from lib.lake import pyfs

log = logging.getLogger(__name__)

# Error conditions of a Delta read that mean "no Delta table at this path".
NOT_A_DELTA_TABLE = frozenset({"PATH_NOT_FOUND", "DELTA_TABLE_NOT_FOUND", "DELTA_MISSING_DELTA_TABLE", "DELTA_EMPTY_DIRECTORY",
                               "DELTA_PATH_DOES_NOT_EXIST"})
_GLOB = re.compile(r"([{}\[\]*?\\])")


def apply_storage_conf(spark: SparkSession, conf: Iterable[tuple[str, str]]) -> None:
    """Session-level settings for the lake's file system (e.g. ADLS Gen2 OAuth keys from ``lake.spark_conf``)."""
    for key, value in conf:
        spark.conf.set(key, value)


def apply_hadoop_settings(spark: SparkSession, settings: Mapping[str, str]) -> None:
    """Put Hadoop file-system settings (e.g. ABFS auth from ``storage:``) into a running session's SQL conf,
    which Spark merges into the Hadoop configuration of every DataFrame read and write and of Delta's log
    (``sessionState.newHadoopConf``). On a session built by ``jobs/_session.py`` they are in already as
    ``spark.hadoop.*``; a reused session (Databricks, spark-submit) and a Spark Connect session get them
    here. A session that refuses them (Databricks serverless and standard access clusters accept no
    credentials at run time) is said at WARNING, naming the keys: the lake is then reached with the
    credentials the Spark side has (Unity Catalog external locations, the cluster's Spark config)."""
    refused: list[str] = []
    reason = ""
    for key, value in settings.items():
        try:
            spark.conf.set(key, value)
        except Exception as exc:  # noqa: BLE001 - said once below, without values
            refused.append(key)
            reason = reason or failure_text(exc)
    if refused:
        log.warning("this Spark session refuses the storage settings %s (%s): the lake is read and written with the credentials "
                    "the Spark side has (Unity Catalog, the cluster's Spark config; docs/spark-connect.md)", ", ".join(refused), reason)


def spark_file_path(path: str) -> str:
    """``path`` for Spark's file sources (text, json, parquet), which read ``{}[]*?\\`` as glob patterns:
    those escaped, so the path names itself only (pure)."""
    return _GLOB.sub(r"\\\1", path)


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether a file or directory is at ``path``, as Spark sees it (resolving a text read of it)."""
    try:
        spark.read.format("text").load(spark_file_path(path)).schema  # noqa: B018 - resolving the read checks the path
    except AnalysisException as exc:
        if exc.getCondition() == "PATH_NOT_FOUND":
            return False
        raise
    return True


def delete_path(spark: SparkSession, path: str) -> bool:
    """Delete ``path`` recursively; False when it did not exist (lib/lake/pyfs.py)."""
    return pyfs.delete(spark, path)


def is_delta_table(spark: SparkSession, path: str) -> bool:
    """Whether a Delta table with at least one commit is at ``path`` (Delta resolves it: no listing of
    the whole log)."""
    try:
        spark.read.format("delta").load(path).schema  # noqa: B018 - resolving the read loads the table's snapshot
    except AnalysisException as exc:
        if exc.getCondition() in NOT_A_DELTA_TABLE:
            return False
        raise
    return True


def delta_sql_ref(path: str) -> str:
    """``delta.`path``` for SQL (pure)."""
    return "delta.`" + path.replace("`", "``") + "`"


def ensure_delta_table(spark: SparkSession, path: str, ddl: str) -> bool:
    """Create an empty Delta table with columns ``ddl`` at ``path`` unless one is there; True when
    created. A metadata-only commit: no Spark job, unlike writing an empty DataFrame."""
    if is_delta_table(spark, path):
        return False
    spark.sql(f"CREATE TABLE IF NOT EXISTS {delta_sql_ref(path)} ({ddl}) USING delta")
    return True


def read_text(spark: SparkSession, path: str) -> str:
    """The whole content of a (small) file as UTF-8 text."""
    return "".join(row[0] for row in spark.read.text(spark_file_path(path), wholetext=True).collect())


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write (overwrite) a small UTF-8 file: local, abfss://, wasbs:// (lib/lake/pyfs.py)."""
    pyfs.write_text(spark, path, text)


DELETION_VECTORS = "delta.enableDeletionVectors"


def turn_off_deletion_vectors(spark: SparkSession, path: str, properties: Mapping[str, str]) -> bool:
    """Keep the Delta table at ``path`` free of deletion vectors: the property off, and the files that
    have one rewritten without it (``REORG ... APPLY (PURGE)``) when the table had them on (its
    ``properties``, as DESCRIBE DETAIL gives them). True when something changed."""
    if properties.get(DELETION_VECTORS) != "true":
        return False
    spark.sql(f"ALTER TABLE {delta_sql_ref(path)} SET TBLPROPERTIES ('{DELETION_VECTORS}' = 'false')")
    spark.sql(f"REORG TABLE {delta_sql_ref(path)} APPLY (PURGE)")
    return True
