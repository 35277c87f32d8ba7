"""The Spark SQL settings every job's session needs so the lake's files read the same in every reader (pure).

Spark writes ``timestamp`` (with time zone) columns as Parquet INT96 unless told otherwise. Readers other
than Spark (delta-rs / Polars / DuckDB, pyarrow) decode INT96 as nanoseconds since 1970 and overflow
outside 1677-2262 (a ``2999-12-31`` instant read back as ``1830-11-23``, silently). INT64
``TIMESTAMP_MICROS`` is the Delta protocol's own timestamp encoding and holds every value Spark can.
``timestamp_ntz`` columns are INT64 microseconds whatever this says.

Dates and timestamps are written in the proleptic Gregorian calendar (``CORRECTED``): Spark 4's default,
not the default of every runtime (Spark 3.x based ones refuse or rebase dates before 1582), and the
calendar every other reader assumes.

All are runtime SQL settings: ``jobs/_session.py`` sets them on the session a job runs in, also one that
was active before the job started (spark-submit, Databricks), where builder settings have no effect.
Files already written keep their encoding and are read as before (Parquet records the type per file).

``secret_redaction_conf`` is the redaction pattern of the settings that carry secrets (Azure account keys,
SAS tokens, OAuth client secrets): a core setting, read when the SparkContext starts, so it goes in where
the session is built (jobs/_session.py), into dist/spark-submit.conf (scripts/spark_submit_conf.py) and
into the Databricks bundle's cluster Spark config (resources/jobs.yml); a running session cannot take it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LAKE_SQL_CONF: dict[str, str] = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
}


def lake_sql_conf() -> dict[str, str]:
    """The settings (a fresh dict) a session writing the lake must carry."""
    return dict(LAKE_SQL_CONF)


# Spark's own default of spark.redaction.regex (core/src/main/scala/org/apache/spark/internal/config/package.scala).
SPARK_DEFAULT_REDACTION_REGEX = "(?i)secret|password|token|access[.]?key"
# The setting names the jobs set that carry a secret (lib/lake/azure_auth.py) and that Spark's default misses:
# fs.azure.account.key.<account host> (the account key) and fs.azure.sas.* (fixed SAS tokens). The others
# already match a default term (oauth2.client.secret: secret) and are listed for whoever reads the pattern.
# Spark also applies the pattern to data source options (names and values): the Kafka source's
# kafka.sasl.jaas.config (its value names the password) and kafka.ssl.keystore.key (a private key).
SECRET_SETTING_TERMS = ("fs[.]azure[.]account[.]key", "fs[.]azure[.]sas", "oauth2[.]client[.]secret",
                        "sasl[.]jaas[.]config", "ssl[.]keystore[.]key", "ssl[.]key[.]password")
SECRET_REDACTION_REGEX = SPARK_DEFAULT_REDACTION_REGEX + "|" + "|".join(SECRET_SETTING_TERMS)


def secret_redaction_conf() -> dict[str, str]:
    """``spark.redaction.regex``: Spark's default terms plus the Azure secret settings. Spark redacts every
    setting whose name (or value) it matches in the UI's Environment page, the event log and the SQL
    executions' modified settings, so an account key set as ``spark.hadoop.fs.azure.account.key.*`` (or set
    into the session at run time) is shown as ``*********(redacted)``."""
    return {"spark.redaction.regex": SECRET_REDACTION_REGEX}


def unredacted(names: Iterable[str], regex: str | None) -> list[str]:
    """The setting ``names`` a session's ``spark.redaction.regex`` (None: not set, Spark's default) does not
    match, as Spark applies it (a search anywhere in the name). Empty when the pattern cannot be read as a
    Python regex (Java syntax Python lacks): nothing is claimed then."""
    try:
        pattern = re.compile(regex or SPARK_DEFAULT_REDACTION_REGEX)
    except re.error:
        return []
    return [name for name in names if not pattern.search(name)]
