"""Against a real Oracle / SQL Server, when one is configured; skipped otherwise (no server of either
can run on this project's machines, so these tests have NOT been run here: docs/sources.md).

    ORACLE_TEST_URL=host:port/SERVICE_NAME  ORACLE_TEST_USER=...  ORACLE_TEST_PASSWORD=...
    SQLSERVER_TEST_URL=host:port/database   SQLSERVER_TEST_USER=... SQLSERVER_TEST_PASSWORD=...

The user needs to create tables in its own schema (Oracle) / in ``dbo`` (SQL Server). The handoff
test also needs the DBA preparation (`jobs/cdc_connector.py ... prepare-sql`), the local Kafka Connect
with the Debezium plugins (`make up`) able to reach the server, and ``ORACLE_TEST_CDC=1`` /
``SQLSERVER_TEST_CDC=1``. Covered as for PostgreSQL: fidelity value by value, resume after kill -9,
the handoff position with writes running during the load, then the CDC stream until the lake equals the
source, validation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from lib.config import load_config
from lib.dialects import get_dialect

from .conftest import ROOT

KINDS = {
    "oracle": ("ORACLE_TEST_URL", "ORACLE_TEST_USER", "ORACLE_TEST_PASSWORD"),
    "sqlserver": ("SQLSERVER_TEST_URL", "SQLSERVER_TEST_USER", "SQLSERVER_TEST_PASSWORD"),
}
pytestmark = pytest.mark.real_source


def configured(kind: str) -> bool:
    return all(os.environ.get(v) for v in KINDS[kind])


@pytest.fixture(params=["oracle", "sqlserver"])
def real(request, tmp_path, spark):
    kind = request.param
    if not configured(kind):
        pytest.skip(f"{' / '.join(KINDS[kind])} not set: no real {kind} server configured")
    return RealSource(kind, tmp_path, spark)


class RealSource:
    """One scratch table family on the configured server, with its pipeline config."""

    def __init__(self, kind: str, tmp: Path, spark: Any) -> None:
        url, user, password = (os.environ[v] for v in KINDS[kind])
        hostport, _, target = url.partition("/")
        host, _, port = hostport.partition(":")
        self.kind, self.tmp, self.spark = kind, tmp, spark
        self.suffix = uuid.uuid4().hex[:6].upper()
        self.schema = user.upper() if kind == "oracle" else "dbo"
        connection: dict[str, Any] = {"host": host, "port": int(port), "user": user, "password": "${REAL_TEST_PASSWORD}"}
        if kind == "oracle":
            connection["service_name"] = target
        else:
            connection.update(database=target, trust_server_certificate=True)
        self.env = {"REAL_TEST_PASSWORD": password}
        self.raw = {
            "lake": {"root": str(tmp / "lake")},
            "checkpoints": {"root": str(tmp / "checkpoints")},
            "kafka": {"bootstrap_servers": os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")},
            "bulk": {"retry_backoff_seconds": 0.5, "max_attempts": 2, "min_rows_to_split": 1000, "rows_per_chunk": 2000, "partitions": 2},
            "sources": {"real": {"type": kind, "connection": connection, "schemas": [self.schema], "include": [f"*{self.suffix}"]}},
        }
        self.config_path = tmp / "config.yaml"
        self.write()
        self.dialect = get_dialect(kind)
        os.environ.update(self.env)
        self.source = load_config(self.config_path, env={**os.environ, **self.env}).source("real")

    def write(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.raw))

    def name(self, base: str) -> str:
        return f"{base}_{self.suffix}"

    def execute(self, *statements: str) -> None:
        """DDL / DML through the real JDBC driver in Spark's JVM (autocommit)."""
        jvm = self.spark.sparkContext._jvm
        props = jvm.java.util.Properties()
        for key, value in self.dialect.jdbc_properties(self.source.connection, 1000).items():
            if key not in ("driver", "fetchsize"):
                props.setProperty(key, value)
        loader = jvm.Thread.currentThread().getContextClassLoader()
        driver = jvm.java.lang.Class.forName(self.dialect.jdbc_driver, True, loader).getDeclaredConstructor().newInstance()
        conn = driver.connect(self.dialect.jdbc_url(self.source.connection), props)
        try:
            stmt = conn.createStatement()
            for sql in statements:
                stmt.execute(sql)
        finally:
            conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.dialect.query(self.source.connection, sql)

    def job(self, script: str, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        return subprocess.run([sys.executable, str(ROOT / "jobs" / script), "--config", str(self.config_path), "--source", "real", *args],
                              env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)  # fmt: skip

    def lake(self, table: str) -> Any:
        return self.spark.read.format("delta").load(str(self.tmp / "lake" / "real" / self.schema / table))


FIDELITY = {
    "oracle": (
        'CREATE TABLE "{t}" (ID NUMBER(10) PRIMARY KEY, N NUMBER, A NUMBER(12,2), NEG NUMBER(5,-2), F BINARY_DOUBLE, D DATE, '
        "TS TIMESTAMP(6), TZ TIMESTAMP(6) WITH TIME ZONE, TS9 TIMESTAMP(9), IV INTERVAL DAY(2) TO SECOND(6), YM INTERVAL YEAR(2) TO MONTH, "
        "S VARCHAR2(50), NS NVARCHAR2(50), C CLOB, R RAW(8), X XMLTYPE)",
        [
            "INSERT INTO \"{t}\" VALUES (1, 0.000012345678901234567, 1234.5, 123400, 1.5, TIMESTAMP '2000-01-02 03:04:05', "
            "TIMESTAMP '2024-03-01 10:15:30.123456', TIMESTAMP '2024-03-01 10:15:30.123456 +02:00', TIMESTAMP '2024-03-01 10:15:30.123456789', "
            "INTERVAL '3 04:05:06.5' DAY TO SECOND, INTERVAL '2-3' YEAR TO MONTH, 'plain', N'ñandú', 'clob text', HEXTORAW('89504E47'), XMLTYPE('<a>1</a>'))",
            'INSERT INTO "{t}" (ID) VALUES (2)',
        ],
        {
            "ID": Decimal(1), "N": Decimal("0.000012345678901234567"), "A": Decimal("1234.50"), "NEG": Decimal(123400), "F": 1.5,
            "S": "plain", "NS": "ñandú", "C": "clob text", "R": bytes.fromhex("89504E47"), "IV": "+03 04:05:06.500000", "YM": "+02-03",
            "TS9": "2024-03-01 10:15:30.123456789",
        },
    ),
    "sqlserver": (
        "CREATE TABLE [{t}] (id int PRIMARY KEY, tiny tinyint, m money, d decimal(12,2), dt datetime2(7), dto datetimeoffset(7), tm time(7), "
        "u uniqueidentifier, b bit, x xml, h hierarchyid, g geography, v sql_variant, nv nvarchar(50), vb varbinary(8))",
        [
            "INSERT INTO [{t}] VALUES (1, 255, 1234.5678, 1234.5, '2024-03-01 10:15:30.1234567', '2024-03-01 10:15:30.1234567 +02:00', "
            "'09:30:00.1234567', '6F9619FF-8B86-D011-B42D-00C04FC964FF', 1, '<a>1</a>', '/1/2/', geography::Point(47.65, -122.34, 4326), "
            "CAST(42 AS int), N'ñandú', 0x89504E47)",
            "INSERT INTO [{t}] (id) VALUES (2)",
        ],
        {
            "id": 1, "tiny": 255, "m": Decimal("1234.5678"), "d": Decimal("1234.50"), "tm": "09:30:00.123456",
            "u": "6F9619FF-8B86-D011-B42D-00C04FC964FF", "b": True, "h": "/1/2/", "v": "42", "nv": "ñandú", "vb": bytes.fromhex("89504E47"),
        },
    ),
}  # fmt: skip


def test_fidelity_value_by_value(real):
    ddl, inserts, expected = FIDELITY[real.kind]
    table = real.name("FIDELITY" if real.kind == "oracle" else "fidelity")
    real.execute(ddl.format(t=table), *[i.format(t=table) for i in inserts])
    result = real.job("bulk_load.py")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r[0]: r.asDict() for r in real.lake(table).collect()}
    first = rows[expected[next(iter(expected))]]
    for column, value in expected.items():
        assert first[column] == value, column
    assert all(v is None for k, v in rows[2 if real.kind == "sqlserver" else Decimal(2)].items() if not k.startswith("__") and k.upper() != "ID")


def test_resume_after_kill_9_and_validation(real):
    table = real.name("BIG" if real.kind == "oracle" else "big")
    if real.kind == "oracle":
        real.execute(f'CREATE TABLE "{table}" (ID NUMBER(10) PRIMARY KEY, V VARCHAR2(40))',
                     f"INSERT INTO \"{table}\" SELECT LEVEL * 7 - 3000, 'v' || LEVEL FROM DUAL CONNECT BY LEVEL <= 20000")  # fmt: skip
    else:
        real.execute(f"CREATE TABLE [{table}] (id int PRIMARY KEY, v nvarchar(40))",
                     f"INSERT INTO [{table}] SELECT TOP 20000 ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) * 7 - 3000, N'v' FROM sys.all_objects a CROSS JOIN sys.all_objects b")  # fmt: skip
    delta_log = real.tmp / "lake" / "real" / real.schema / table / "_delta_log"
    env = {**os.environ, **real.env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "jobs" / "bulk_load.py"), "--config", str(real.config_path), "--source", "real"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 600
    while not (delta_log.exists() and len(list(delta_log.glob("*.json"))) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    result = real.job("bulk_load.py")
    assert result.returncode == 0, result.stdout + result.stderr
    df = real.lake(table)
    key = "ID" if real.kind == "oracle" else "id"
    assert df.count() == 20000 and df.select(key).distinct().count() == 20000
    report = real.tmp / "report.json"
    result = real.job("validate.py", "--report", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    # a change in the source: validation fails naming the table
    if real.kind == "oracle":
        real.execute(f"UPDATE \"{table}\" SET V = 'changed' WHERE ID = 4")
    else:
        real.execute(f"UPDATE [{table}] SET v = N'changed' WHERE id = 4")
    result = real.job("validate.py", "--report", str(report))
    assert result.returncode == 1 and table in json.dumps(json.loads(report.read_text()))


def test_handoff_position_with_concurrent_writes(real):
    flag = "ORACLE_TEST_CDC" if real.kind == "oracle" else "SQLSERVER_TEST_CDC"
    if not os.environ.get(flag):
        pytest.skip(f"{flag} not set: the database is not prepared for CDC (prepare-sql)")
    table = real.name("HANDOFF" if real.kind == "oracle" else "handoff")
    connect_url = os.environ.get("CONNECT_URL", "http://127.0.0.1:8083")
    real.raw["sources"]["real"]["cdc"] = {"topic_prefix": f"real{real.suffix.lower()}", "connect_url": connect_url}
    real.write()
    if real.kind == "oracle":
        real.execute(f'CREATE TABLE "{table}" (ID NUMBER(10) PRIMARY KEY, V NUMBER(10))',
                     f'INSERT INTO "{table}" SELECT LEVEL, 0 FROM DUAL CONNECT BY LEVEL <= 5000',
                     f'ALTER TABLE "{table}" ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS')  # fmt: skip
    else:
        real.execute(f"CREATE TABLE [{table}] (id int PRIMARY KEY, v int)",
                     f"INSERT INTO [{table}] SELECT TOP 5000 ROW_NUMBER() OVER (ORDER BY (SELECT NULL)), 0 FROM sys.all_objects a CROSS JOIN sys.all_objects b",
                     f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{table}', @role_name = NULL")  # fmt: skip
    env = {**os.environ, **real.env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "jobs" / "bulk_load.py"), "--config", str(real.config_path), "--source", "real"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    writes = 0
    while proc.poll() is None:  # writes keep running during the whole load
        quoted = f'"{table}"' if real.kind == "oracle" else f"[{table}]"
        real.execute(f"UPDATE {quoted} SET {'V' if real.kind == 'oracle' else 'v'} = {writes + 1} WHERE {'ID' if real.kind == 'oracle' else 'id'} = {writes % 5000 + 1}")
        writes += 1
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
    from lib.status.store import StatusStore

    event = StatusStore(real.spark, str(real.tmp / "lake")).latest("real")[("real", real.schema, table)]
    position = real.dialect.position_number(event.snapshot_position)
    assert position > 0 and event.snapshot_method in ("connector-snapshot-scn", "connector-start-lsn")
    # every row of the copy carries the recorded position; the connector holds the writes after it
    lake = real.lake(table)
    assert lake.count() == 5000 and {int(r[0]) for r in lake.select("__source_commit_pos").distinct().collect()} == {position}
    assert writes > 0
    # the stream applies every write after the position exactly once in effect: the lake equals the source.
    # The connector may still be catching up: the stream runs again until equal, bounded (never a sleep).
    key, value = ("ID", "V") if real.kind == "oracle" else ("id", "v")
    quoted = f'"{table}"' if real.kind == "oracle" else f"[{table}]"
    expected = {int(k): int(v) for k, v in real.query(f"SELECT {key}, {value} FROM {quoted}")}
    deadline = time.monotonic() + 600
    while True:
        result = real.job("cdc_stream.py", "--available-now")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        got = {int(r[0]): int(r[1]) for r in real.lake(table).select(key, value).collect()}
        if got == expected or time.monotonic() > deadline:
            break
    assert got == expected
