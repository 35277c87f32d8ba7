"""The `storage:` secrets never reach Spark's event log (what the Spark UI and the history server show): a
session built by the jobs carries spark.redaction.regex (lib.lake.session_conf), which Spark's default lacks
for the account key. A fresh process: spark.redaction.regex is read when the SparkContext starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.integration.conftest import job_env

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"shop": {"type": "postgres", "connection": {"host": "h", "database": "d", "user": "u", "password": "p"}, "schemas": ["public"]}}
ACCOUNTS = {
    "keyacct": {"auth": "account_key", "key": "QUJDREVGMTIzNDU2"},
    "sasacct": {"auth": "sas", "sas_token": "sv=2024-01-01&sig=zyxw987"},
    "spacct": {"auth": "service_principal", "tenant_id": "tenant-1", "client_id": "client-1", "client_secret": "c2xpZGluZ2Rvb3I"},
}
VALUES = ("QUJDREVGMTIzNDU2", "zyxw987", "c2xpZGluZ2Rvb3I")


def _event_log(tmp_path: Path, default_redaction: bool) -> tuple[str, str]:
    """The event log of a session built by `_cli.spark` (the settings at build time and set into the session),
    after a DataFrame job and a SQL query (their executions record the session's modified settings)."""
    logs = tmp_path / ("default" if default_redaction else "jobs")
    logs.mkdir()
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'jobs')!r})
        import _cli, _session
        from lib.config import parse_config
        _session.LOCAL_CONF.update({{"spark.eventLog.enabled": "true", "spark.eventLog.dir": {str(logs)!r}, "spark.eventLog.compress": "false"}})
        if {default_redaction!r}:
            del _session.LOCAL_CONF["spark.redaction.regex"]
        config = parse_config({{"sources": {SOURCES!r}, "storage": {{"accounts": {ACCOUNTS!r}}}}}, {{}})
        spark = _cli.spark(config, "probe")
        spark.range(3).selectExpr("sum(id)").collect()
        spark.sql("SELECT 1").collect()
        spark.stop()
    """))
    env = {k: v for k, v in job_env().items() if k != "PYSPARK_GATEWAY_PORT"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    files = [p for p in logs.rglob("*") if p.is_file()]
    assert files
    return "".join(p.read_text(encoding="utf-8") for p in files), result.stderr


def test_storage_secrets_are_redacted_in_the_event_log(tmp_path):
    text, stderr = _event_log(tmp_path, default_redaction=False)
    assert "fs.azure.account.key.keyacct.dfs.core.windows.net" in text  # the setting is logged ...
    assert [v for v in VALUES if v in text] == []  # ... its value is not
    assert "spark.redaction.regex" not in stderr  # no warning
    # Spark's default pattern shows the account key: the reason the jobs set their own; the job says so
    text, stderr = _event_log(tmp_path, default_redaction=True)
    assert "QUJDREVGMTIzNDU2" in text
    assert "this session's spark.redaction.regex does not match fs.azure.account.key.keyacct.dfs.core.windows.net:" in stderr
    assert "QUJDREVGMTIzNDU2" not in stderr
