"""The jobs' command-line contract: exit codes, one-line errors naming the YAML path, no secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import PG, ROOT

SECRET = "Sup3r-Secret-Pw!"


def run(job: str, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TEST_DB_PASSWORD": SECRET, **(env_extra or {})}
    return subprocess.run([sys.executable, str(ROOT / "jobs" / job), *args], env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def config_file(tmp_path: Path, mutate=None, port: int = PG["port"], database: str = "postgres") -> Path:
    raw = {
        "lake": {"root": str(tmp_path / "lake")},
        "bulk": {"max_attempts": 3, "retry_backoff_seconds": 0.1},
        "sources": {
            "shop": {
                "type": "postgres",
                "connection": {"host": "127.0.0.1", "port": port, "database": database, "user": "loader", "password": "${TEST_DB_PASSWORD}"},
                "schemas": ["public"],
            }
        },
    }
    if mutate:
        mutate(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def assert_clean_usage_error(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stderr + result.stdout
    assert expected in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda r: r["sources"]["shop"]["connection"].update(port="abc"), "config error: sources.shop.connection.port: expected an integer, got 'abc'"),
        (lambda r: r["sources"]["shop"].update(type="db2"), "config error: sources.shop.type: expected one of postgres, oracle, sqlserver, got 'db2'"),
        (lambda r: r["lake"].update(format="orc"), "config error: lake.format: expected one of delta, parquet, got 'orc'"),
        (lambda r: r["sources"]["shop"].update(schema=["x"]), "config error: sources.shop.schema: unknown key"),
        (lambda r: r["sources"]["shop"]["connection"].pop("host"), "config error: sources.shop.connection.host: is required"),
        (lambda r: r["sources"]["shop"]["connection"].update(password="${NOT_SET_ANYWHERE}"), "environment variable NOT_SET_ANYWHERE is not set"),
        (lambda r: r["sources"]["shop"].update(tables={"public.t": {"partitions": "many"}}), 'sources.shop.tables.public.t.partitions: expected an integer'),
    ],
)
def test_bad_config_exits_2_naming_the_path(tmp_path, mutate, expected):
    assert_clean_usage_error(run("bulk_load.py", "--config", str(config_file(tmp_path, mutate)), "--source", "shop"), expected)


def test_unknown_source_and_missing_file(tmp_path):
    assert_clean_usage_error(run("bulk_load.py", "--config", str(config_file(tmp_path)), "--source", "nope"), "sources: unknown source 'nope' (configured: shop)")
    assert_clean_usage_error(run("bulk_load.py", "--config", str(tmp_path / "none.yaml"), "--source", "shop"), "cannot read config file")
    assert_clean_usage_error(run("status.py", "--config", str(tmp_path / "none.yaml")), "cannot read config file")


def test_bad_flags_exit_2(tmp_path):
    cfg = str(config_file(tmp_path))
    assert_clean_usage_error(run("bulk_load.py", "--config", cfg, "--source", "shop", "--partitions", "0"), "--partitions: expected a positive integer, got '0'")
    assert_clean_usage_error(run("bulk_load.py", "--config", cfg), "the following arguments are required: --source")
    assert_clean_usage_error(run("bulk_load.py", "--config", cfg, "--source", "shop", "--bogus"), "unrecognized arguments: --bogus")
    assert_clean_usage_error(run("bulk_load.py", "--config", cfg, "--source", "shop", "--fresh-start"), "pass --yes to confirm")
    result = run("bulk_load.py", "--config", cfg, "--source", "shop", "--dry-run", "--tables", "no_such_*", env_extra={"TEST_DB_PASSWORD": PG["password"]})
    assert result.returncode == 2 and "usage error: --tables no_such_*: no table of source 'shop' matches" in result.stderr


def test_help_lists_the_flags():
    result = run("bulk_load.py", "--help")
    assert result.returncode == 0
    for flag in ("--config", "--source", "--tables", "--dry-run", "--no-resume", "--fresh-start", "--yes", "--parallel-tables", "--partitions", "--log-level"):
        assert flag in result.stdout


def test_unreachable_source_retries_then_fails_without_leaking_the_password(tmp_path):
    result = run("bulk_load.py", "--config", str(config_file(tmp_path, port=1)), "--source", "shop", "--dry-run")
    assert result.returncode == 1
    assert "cannot connect to postgres at 127.0.0.1:1/postgres" in result.stderr
    assert result.stderr.count("retrying in") == 2  # 3 attempts
    assert SECRET not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_wrong_password_fails_fast_and_is_not_printed(tmp_path):
    result = run("bulk_load.py", "--config", str(config_file(tmp_path)), "--source", "shop", "--dry-run")
    assert result.returncode == 1
    assert "password authentication failed" in result.stderr
    assert "retrying" not in result.stderr  # authentication errors are not transient
    assert SECRET not in result.stderr + result.stdout
