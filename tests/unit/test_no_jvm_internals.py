"""lib/ and jobs/ reach Spark through public APIs only, so every job runs on Spark Connect too (no SparkContext,
no py4j gateway there: docs/spark-connect.md). The one JVM-specific piece is jobs/_jvm_output.py, which starts
the local classic driver JVM and is never called when SPARK_REMOTE is set."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Attribute accesses into a classic session's JVM side (py4j): absent on a Spark Connect session.
JVM_INTERNALS = re.compile(r"\.(sparkContext|_jvm|_jsc|_jsparkSession|_jdf|_jconf|_jreader|_jwrite|cloneSession)\b")


def offending_lines(text: str) -> list[str]:
    """The lines of ``text`` that reach into the JVM (pure)."""
    return [line.strip() for line in text.splitlines() if JVM_INTERNALS.search(line)]


def test_the_pattern_finds_jvm_internals_and_nothing_else() -> None:
    assert offending_lines("x = spark.sparkContext._jsc.hadoopConfiguration()\nspark._jsparkSession.cloneSession()\n") == [
        "x = spark.sparkContext._jsc.hadoopConfiguration()", "spark._jsparkSession.cloneSession()"]
    assert offending_lines("from _jvm_output import launch_gateway_quietly\nspark.conf.get('spark.app.id')\n# no SparkContext\n") == []


def test_lib_and_jobs_use_no_jvm_internals() -> None:
    found = {str(path.relative_to(ROOT)): lines for folder in ("lib", "jobs") for path in sorted((ROOT / folder).rglob("*.py"))
             if (lines := offending_lines(path.read_text(encoding="utf-8")))}
    assert found == {}, f"JVM internals (not on Spark Connect; use public APIs: lib/sessions.py, lib/lake/storage.py): {found}"


def test_lib_and_jobs_use_no_delta_python_api() -> None:
    """delta-spark's ``DeltaTable`` sends Delta's own Spark Connect messages, which a server only takes with Delta's
    Connect plugin (io.delta:delta-connect-server, not published for Delta 4.0.x): tables are read, created,
    described and changed with the DataFrame API and SQL (``DESCRIBE DETAIL``, ``MERGE INTO``, ``DELETE FROM``)."""
    api = re.compile(r"^\s*(from delta\.tables import|import delta\.tables)|\bdelta\.tables\.")
    found = {str(path.relative_to(ROOT)): [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if api.search(line)]
             for folder in ("lib", "jobs") for path in sorted((ROOT / folder).rglob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}
