"""Integration fixtures: a scratch PostgreSQL database, one SparkSession, config files per test.

Needs the local PostgreSQL of `make up` (PG_PORT, default 55432). Each test works in its own schema
and source name, so replication slots and lake paths never collide.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "jobs"))

PG = {
    "host": "127.0.0.1",
    "port": int(os.environ.get("PG_PORT", "55432")),
    "user": "loader",
    "password": os.environ.get("SHOP_DB_PASSWORD", "loader"),
}
SUPERUSER = {**PG, "user": "postgres", "password": os.environ.get("PG_SUPERUSER_PASSWORD", "postgres")}

# Each job's Spark JVM (spark-submit adds SPARK_SUBMIT_OPTS to the driver's command line) compiles with C1 only and
# collects with one thread: a job's JVM lives seconds to a minute on two shared cores, where C2 and parallel GC threads
# cost more CPU than they save. Measured here with one job (start, Delta write, MERGE, read) three times each,
# alternating: 42.7-44.1 s against 65.9-79.0 s at load 5-6. The test session's own JVM (the `spark` fixture) lives for
# the whole suite and runs most of its queries: it keeps the JVM's defaults, since with C1 only the in-process tests
# ran 1.3-2.3x slower in CI (test_validate 118 -> 146 s, the interrupted bulk load 67 -> 131 s).
# Test speed only: a job run by a user gets the JVM's defaults, and `make bench` measures with them.
JOB_JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
os.environ.setdefault("SPARK_SUBMIT_OPTS", JOB_JVM_OPTS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def scratch_db() -> Iterator[str]:
    name = f"lh_test_{os.getpid()}"
    admin = psycopg2.connect(dbname="postgres", **SUPERUSER)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}" OWNER loader')
    yield name
    admin.close()  # a test may have restarted PostgreSQL (tests/integration/test_cdc_chaos.py): connect again
    admin = psycopg2.connect(dbname="postgres", **SUPERUSER)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s AND NOT active", (name,))
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


class Source:
    """The scratch database as seen by one test: SQL helpers and its config."""

    def __init__(self, db: str, schema: str, tmp: Path) -> None:
        self.db = db
        self.schema = schema
        self.tmp = tmp
        self.name = schema.replace("-", "_")

    def connect(self, superuser: bool = False) -> Any:
        conn = psycopg2.connect(dbname=self.db, **(SUPERUSER if superuser else PG))
        conn.autocommit = True
        return conn

    def execute(self, sql: str, params: Any = None, superuser: bool = False) -> None:
        conn = self.connect(superuser)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
        finally:
            conn.close()

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    @property
    def lake_root(self) -> str:
        return str(self.tmp / "lake")

    def config_dict(self, cdc: bool = True, **bulk: Any) -> dict[str, Any]:
        source: dict[str, Any] = {
            "type": "postgres",
            "connection": {"host": PG["host"], "port": PG["port"], "database": self.db, "user": PG["user"], "password": "${TEST_DB_PASSWORD}"},
            "schemas": [self.schema],
        }
        if cdc:
            source["cdc"] = {"topic_prefix": self.name, "slot_name": f"slot_{self.name}", "publication_name": f"pub_{self.name}"}
        return {
            "lake": {"root": self.lake_root, "format": "delta"},
            "checkpoints": {"root": str(self.tmp / "checkpoints")},
            "bulk": {"retry_backoff_seconds": 0.2, "max_attempts": 2, "progress_interval_seconds": 0, **bulk},
            "sources": {self.name: source},
        }

    def write_config(self, raw: dict[str, Any] | None = None, **bulk: Any) -> Path:
        path = self.tmp / f"config-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(raw or self.config_dict(**bulk)))
        return path

    def load_config(self, raw: dict[str, Any] | None = None, **bulk: Any) -> Any:
        from lib.config import load_config

        return load_config(self.write_config(raw, **bulk), env={"TEST_DB_PASSWORD": PG["password"]})

    def lake_path(self, table: str) -> str:
        return f"{self.lake_root}/{self.name}/{self.schema}/{table}"


@pytest.fixture
def source(scratch_db: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Source]:
    schema = "t_" + request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:40] + "_" + uuid.uuid4().hex[:4]
    src = Source(scratch_db, schema, tmp_path)
    src.execute(f'CREATE SCHEMA "{schema}"')
    yield src
    src.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s AND NOT active", (f"slot_{src.name}",))


@pytest.fixture(scope="session")
def spark() -> Any:
    os.environ["TEST_DB_PASSWORD"] = PG["password"]
    from _session import get_spark

    job_opts = os.environ.pop("SPARK_SUBMIT_OPTS", None)  # this JVM lives for the whole suite: the JVM's defaults
    try:
        session = get_spark("tests", {"spark.sql.shuffle.partitions": "2"})
    finally:
        if job_opts is not None:
            os.environ["SPARK_SUBMIT_OPTS"] = job_opts
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _suite_session_active(request: pytest.FixtureRequest) -> None:
    """Each test that uses the suite's session starts with it as the process's active session. In-process streams
    MERGE through child sessions (lib.sessions.child_session), and pyspark's createDataFrame makes its session the
    active one for the whole process; a job's process has only its own session, so `get_spark()` in a later test
    must find the suite's session, not a child an earlier test's stream left active."""
    if "spark" in request.fixturenames:
        request.getfixturevalue("spark").createDataFrame([(0,)], "x int")  # no Spark job: a local relation, made active


def job_env() -> dict[str, str]:
    """Environment for job subprocesses: the test password, quiet Spark."""
    return {**os.environ, "TEST_DB_PASSWORD": PG["password"], "PYTHONPATH": str(ROOT)}
