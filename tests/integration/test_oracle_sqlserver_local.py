"""Oracle and SQL Server as far as they run here (no server of either can run on this machine):

- the real JDBC drivers (ojdbc11, mssql-jdbc from jars/) against a closed port on 127.0.0.1: the jobs
  retry, then exit 1 with one line naming the host, no traceback and no password;
- the real Kafka Connect of the local stack with the Debezium 3.2.3 Oracle and SQL Server plugins:
  each connector config the dialects generate passes ``PUT /connector-plugins/<class>/config/validate``
  with no error but the unreachable database.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lib.config import parse_config
from lib.debezium.connect_client import ConnectClient
from lib.debezium.include import connector_config_from_globs
from lib.dialects import get_dialect
from tests.integration.conftest import ROOT, job_env

CONNECT_URL = os.environ.get("CONNECT_URL", f"http://127.0.0.1:{os.environ.get('CONNECT_PORT', '8083')}")
PASSWORDS = {"ORA_TEST_PW": "ora-pw-never-printed", "MSS_TEST_PW": "mss-pw-never-printed"}


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_config(tmp: Path, port: int) -> dict:
    return {
        "lake": {"root": str(tmp / "lake")},
        "checkpoints": {"root": str(tmp / "checkpoints")},
        "kafka": {"bootstrap_servers": os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")},
        "bulk": {"max_attempts": 2, "retry_backoff_seconds": 0.2},
        "sources": {
            "ora": {
                "type": "oracle",
                "connection": {"host": "127.0.0.1", "port": port, "service_name": "ORCLPDB1", "user": "loader", "password": "${ORA_TEST_PW}"},
                "schemas": ["SHOP"],
                "cdc": {"topic_prefix": "ora", "connect_url": CONNECT_URL},
            },
            "mss": {
                "type": "sqlserver",
                "connection": {
                    "host": "127.0.0.1",
                    "port": port,
                    "database": "shop",
                    "user": "loader",
                    "password": "${MSS_TEST_PW}",
                    "trust_server_certificate": True,
                },
                "schemas": ["dbo"],
                "cdc": {"topic_prefix": "mss", "connect_url": CONNECT_URL},
            },
        },
    }


ORA_DOWN = "ERROR job: oracle at 127.0.0.1:{port}/ORCLPDB1: ORA-12541: Cannot connect. No listener at host 127.0.0.1 port {port}."
MSS_DOWN = "ERROR job: sqlserver at 127.0.0.1:{port}/shop: The TCP/IP connection to the host 127.0.0.1, port {port} has failed."


@pytest.mark.parametrize(
    ("source", "script", "args", "message"),
    [
        ("ora", "bulk_load.py", [], ORA_DOWN),
        ("mss", "bulk_load.py", ["--dry-run"], MSS_DOWN),
        ("ora", "validate.py", [], ORA_DOWN),
        ("mss", "cdc_connector.py", ["prepare-sql"], MSS_DOWN),
    ],
)
def test_unreachable_server_retries_then_exits_1_naming_the_host(tmp_path, source, script, args, message):
    port = closed_port()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw_config(tmp_path, port)))
    env = {**os.environ, **PASSWORDS, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / script), "--config", str(path), "--source", source, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "failed (attempt 1 of 2), retrying in 0.2s" in output
    assert message.format(port=port) in output
    assert "Traceback" not in output and "Py4JJavaError" not in output
    assert not any(pw in output for pw in PASSWORDS.values())


def connect_available() -> bool:
    try:
        plugins = ConnectClient(CONNECT_URL, timeout=5)._call("GET", "/connector-plugins")[1]
    except Exception:  # noqa: BLE001
        return False
    return isinstance(plugins, list)


def validation_errors(config: dict[str, str]) -> dict[str, list[str]]:
    verdict = ConnectClient(CONNECT_URL, timeout=180).validate(config["connector.class"], config)
    errors = {c["value"]["name"]: c["value"]["errors"] for c in verdict["configs"] if c["value"]["errors"]}
    assert verdict["error_count"] == sum(len(e) for e in errors.values())
    return errors


@pytest.mark.parametrize("kind", ["oracle", "sqlserver"])
def test_generated_connector_configs_pass_kafka_connect_validation(tmp_path, kind):
    if not connect_available():
        pytest.fail(f"Kafka Connect is not reachable at {CONNECT_URL}: run `make up` first")
    plugins = {p["class"] for p in ConnectClient(CONNECT_URL)._call("GET", "/connector-plugins")[1]}
    config = parse_config(raw_config(tmp_path, closed_port()), PASSWORDS)
    source = config.source("ora" if kind == "oracle" else "mss")
    dialect = get_dialect(kind)
    tables = [("SHOP", "ORDERS"), ("SHOP", "Gift Cards")] if kind == "oracle" else [("dbo", "orders"), ("sales", "Order Items")]
    for generated in (dialect.connector_config(source, tables), connector_config_from_globs(source, dialect)):
        assert generated["connector.class"] in plugins
        assert not any(pw in str(generated) for pw in PASSWORDS.values())
        errors = validation_errors({**generated, "name": f"validate-{kind}"})
        # the only complaint: the database cannot be reached (nothing listens on the port)
        assert list(errors) == ["database.hostname"], errors
        assert errors["database.hostname"][0].startswith("Unable to connect")
    # the check can fail: a wrong setting is reported by name
    broken = {**dialect.connector_config(source, tables), "snapshot.mode": "sometimes", "name": f"validate-{kind}"}
    assert "snapshot.mode" in validation_errors(broken)


def run_job(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **PASSWORDS, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "jobs" / script), *args], env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("name", "connector_class"), [("ora", "io.debezium.connector.oracle.OracleConnector"), ("mss", "io.debezium.connector.sqlserver.SqlServerConnector")])
def test_cdc_connector_config_prints_the_connector_without_the_database(tmp_path, name, connector_class):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw_config(tmp_path, closed_port())))
    result = run_job("cdc_connector.py", "--config", str(path), "--source", name, "config")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["name"] == f"lakehouse-{name}" and document["config"]["connector.class"] == connector_class
    assert document["config"]["snapshot.mode"] == "no_data" and document["config"]["database.password"] == ("${env:ORA_TEST_PW}" if name == "ora" else "${env:MSS_TEST_PW}")
    assert not any(pw in result.stdout + result.stderr for pw in PASSWORDS.values())


def test_postgres_prepare_sql_and_config(source, tmp_path):
    source.execute(f'CREATE TABLE "{source.schema}".orders (id int PRIMARY KEY, note text); CREATE TABLE "{source.schema}".log (line text)')
    path = source.write_config()
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "cdc_connector.py"), "--config", str(path), "--source", source.name, "prepare-sql"],
        env=job_env(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f'CREATE PUBLICATION "pub_{source.name}" FOR TABLE "{source.schema}"."orders";']
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "cdc_connector.py"), "--config", str(path), "--source", source.name, "config"],
        env=job_env(), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert json.loads(result.stdout)["config"]["table.include.list"] == f"{source.schema}\\.(?:.*)"


def test_cdc_stream_runs_for_an_oracle_source(tmp_path):
    """The job takes Oracle (and SQL Server) sources; their events are applied as
    tests/integration/test_cdc_oracle_sqlserver_stream.py shows. Nothing is loaded here: it says so and stops."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw_config(tmp_path, closed_port())))
    result = run_job("cdc_stream.py", "--config", str(path), "--source", "ora", "--available-now")
    assert result.returncode == 0, result.stderr
    assert "no table of source ora has completed its bulk load yet: nothing was applied" in result.stdout + result.stderr
