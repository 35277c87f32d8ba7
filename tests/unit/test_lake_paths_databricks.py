"""dbfs:/ and /Volumes roots (lib/lake/paths.py): what Spark is given, where Python reads and writes
(config files, validation reports), and where the delta-rs fast paths must leave the writing to Spark;
on Databricks (DATABRICKS_RUNTIME_VERSION set) and off it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lib.config import load_config
from lib.errors import ConfigError
from lib.lake.local_writer import unusable_reason
from lib.lake.paths import (
    is_uri,
    is_volume_path,
    local_disk_reason,
    normalize_root,
    python_path,
    report_target,
    scheme,
    status_path,
    table_path,
)

DBR = {"DATABRICKS_RUNTIME_VERSION": "17.3"}
LOCAL: dict[str, str] = {}


@pytest.mark.parametrize(
    ("path", "uri", "kind"),
    [
        ("dbfs:/mnt/lake", True, "dbfs"),
        ("dbfs:///mnt/lake", True, "dbfs"),
        ("abfss://lake@acct.dfs.core.windows.net/x", True, "abfss"),
        ("file:///tmp/lake", True, "file"),
        ("file:/tmp/lake", True, "file"),
        ("/Volumes/main/lakehouse/lake", False, None),
        ("/dbfs/mnt/lake", False, None),
        ("./lake", False, None),
        ("C:/lake", False, None),  # a drive letter is not a scheme
    ],
)
def test_uris_single_slash_dbfs_included(path, uri, kind):
    assert is_uri(path) is uri and scheme(path) == kind


def test_dbfs_root_stays_a_uri_for_spark_it_was_cwd_joined_before():
    assert normalize_root("dbfs:/mnt/lake", cwd="/work") == "dbfs:/mnt/lake"
    assert normalize_root("dbfs:/mnt/lake/", cwd="/work", env=DBR) == "dbfs:/mnt/lake"
    assert normalize_root("dbfs:/", cwd="/work") == "dbfs:/"  # the root of DBFS keeps its slash
    assert table_path(normalize_root("dbfs:/"), "shop", "public", "orders") == "dbfs:/shop/public/orders"
    assert status_path(normalize_root("dbfs:/mnt/lake")) == "dbfs:/mnt/lake/_pipeline/status"


def test_dbfs_fuse_path_is_given_to_spark_as_dbfs_uri_on_databricks_only():
    # Spark on Databricks resolves plain paths against DBFS: /dbfs/x would be dbfs:/dbfs/x
    assert normalize_root("/dbfs/mnt/lake", env=DBR) == "dbfs:/mnt/lake"
    assert normalize_root("/dbfs", env=DBR) == "dbfs:/"
    assert normalize_root("/dbfs/mnt/lake", env=LOCAL) == "/dbfs/mnt/lake"  # off Databricks: a local directory
    assert normalize_root("/dbfsx/lake", env=DBR) == "/dbfsx/lake"


def test_volume_paths_stay_plain_paths_for_spark():
    root = normalize_root("/Volumes/main/lakehouse/lake/", env=DBR)
    assert root == "/Volumes/main/lakehouse/lake"
    assert table_path(root, "shop", "public", "orders") == "/Volumes/main/lakehouse/lake/shop/public/orders"
    assert normalize_root("/Volumes/main/lakehouse/lake", env=LOCAL) == "/Volumes/main/lakehouse/lake"
    assert is_volume_path("/Volumes/main/lakehouse/lake") and is_volume_path("/Volumes/c/s/v")
    assert not is_volume_path("/Volumes/c/s") and not is_volume_path("/Volumes//s/v") and not is_volume_path("Volumes/c/s/v")


def test_relative_and_local_roots_unchanged():
    assert normalize_root("./lake", cwd="/work", env=LOCAL) == "/work/lake"
    assert normalize_root("abfss://lake@acct.dfs.core.windows.net/lakehouse/", env=DBR) == "abfss://lake@acct.dfs.core.windows.net/lakehouse"


@pytest.mark.parametrize(
    ("path", "env", "expected"),
    [
        ("dbfs:/configs/pipeline.yaml", DBR, "/dbfs/configs/pipeline.yaml"),
        ("dbfs:/", DBR, "/dbfs"),
        ("dbfs:/configs/pipeline.yaml", LOCAL, None),  # no DBFS off Databricks
        ("/Volumes/main/lakehouse/config/pipeline.yaml", DBR, "/Volumes/main/lakehouse/config/pipeline.yaml"),
        ("/Workspace/Users/me/files/config/pipeline.yaml", DBR, "/Workspace/Users/me/files/config/pipeline.yaml"),
        ("file:///etc/pipeline.yaml", LOCAL, "/etc/pipeline.yaml"),
        ("file:/etc/pipeline.yaml", LOCAL, "/etc/pipeline.yaml"),
        ("abfss://c@a.dfs.core.windows.net/pipeline.yaml", DBR, None),
        ("config/pipeline.yaml", LOCAL, "config/pipeline.yaml"),
    ],
)
def test_where_python_reads_and_writes_files(path, env, expected):
    assert python_path(path, env) == expected


def test_reports_python_writes_local_volume_and_dbfs_on_databricks_hadoop_writes_object_stores():
    assert report_target("/Volumes/main/lakehouse/reports/validation.json", DBR) == Path("/Volumes/main/lakehouse/reports/validation.json")
    assert report_target("dbfs:/reports/v.json", DBR) == Path("/dbfs/reports/v.json")
    assert report_target("reports/v.json", LOCAL) == Path("reports/v.json")
    assert report_target("abfss://c@a.dfs.core.windows.net/reports/v.json", DBR) == "abfss://c@a.dfs.core.windows.net/reports/v.json"
    assert report_target("dbfs:/reports/v.json", LOCAL) == "dbfs:/reports/v.json"  # Hadoop says it has no dbfs: file system


@pytest.mark.parametrize(
    "root",
    ["dbfs:/mnt/lake", "/dbfs/mnt/lake", "/Volumes/main/lakehouse/lake", "/local_disk0/lake", "abfss://c@a.dfs.core.windows.net/l", "file:///tmp/lake"],
)
def test_delta_rs_never_writes_on_databricks(root):
    assert local_disk_reason(root, DBR) is not None


def test_delta_rs_off_databricks_local_disk_only():
    assert local_disk_reason("/work/lake", LOCAL) is None
    assert local_disk_reason("file:///work/lake", LOCAL) is None
    assert local_disk_reason("/Volumes/ExternalDisk/lake", LOCAL) is None  # a macOS disk: local
    assert local_disk_reason("dbfs:/mnt/lake", LOCAL) == "the lake is remote (dbfs:)"
    assert local_disk_reason("abfss://c@a.dfs.core.windows.net/l", LOCAL) == "the lake is remote (abfss:)"
    assert "volume" in local_disk_reason("/Volumes/main/lakehouse/lake", DBR)


def test_local_writer_already_hands_a_dbfs_root_to_spark():
    """lib/lake/local_writer.py decides by is_uri: a dbfs:/ root (a plain path before) is remote now."""
    assert unusable_reason("file:///", [], "dbfs:/mnt/lake") is not None
    assert unusable_reason("dbfs:/", [], "/Volumes/main/lakehouse/lake") is not None  # a classic cluster's default FS
    assert unusable_reason("file:///", [], "/work/lake") is None


def test_config_from_a_file_uri_and_a_dbfs_path_off_databricks(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    cfg_file = tmp_path / "pipeline.yaml"
    cfg_file.write_text("lake:\n  root: dbfs:/mnt/lake\nsources:\n  shop:\n    type: postgres\n    connection: {host: h, database: d, user: u, password: p}\n    schemas: [public]\n")
    cfg = load_config(f"file://{cfg_file}", env={})
    assert cfg.lake.root == "dbfs:/mnt/lake"
    with pytest.raises(ConfigError, match="not a path Python reaches here"):
        load_config("dbfs:/configs/pipeline.yaml", env={})
    with pytest.raises(ConfigError, match="not a path Python reaches here"):
        load_config("abfss://c@a.dfs.core.windows.net/pipeline.yaml", env={})


def test_config_from_dbfs_on_databricks_is_read_through_the_fuse_mount(monkeypatch):
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    read: list[Path] = []

    def fake_read_text(self: Path, encoding: str = "utf-8") -> str:
        read.append(self)
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(Path, "read_text", fake_read_text)
    with pytest.raises(ConfigError, match=re.escape("cannot read config file '/dbfs/configs/pipeline.yaml'")):
        load_config("dbfs:/configs/pipeline.yaml", env={})
    assert read == [Path("/dbfs/configs/pipeline.yaml")]


@pytest.mark.parametrize(
    ("report", "env", "expected"),
    [
        ("/Volumes/main/lakehouse/reports/validation.json", DBR, Path("/Volumes/main/lakehouse/reports/validation.json")),
        ("dbfs:/reports/validation.json", DBR, Path("/dbfs/reports/validation.json")),
        ("abfss://c@a.dfs.core.windows.net/reports/v.json", DBR, "abfss://c@a.dfs.core.windows.net/reports/v.json"),
        (None, LOCAL, Path("reports/validation_shop.json")),
    ],
)
def test_validate_job_hands_the_report_target_to_the_runner(report, env, expected, monkeypatch):
    import sys

    from jobs import validate as job

    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    seen = {}
    monkeypatch.setattr(job, "check_rules", lambda *a: None)
    monkeypatch.setattr(job._cli, "spark", lambda config, name: None)
    monkeypatch.setattr(job, "validate_source", lambda spark, config, source, options: seen.setdefault("path", options.report_path) and 0)
    argv = ["validate", "--config", str(Path(__file__).resolve().parents[2] / "config" / "pipeline.yaml"), "--source", "shop"]
    monkeypatch.setattr(sys, "argv", [*argv, *(["--report", report] if report else [])])
    job.main()
    assert seen["path"] == expected


def test_delta_rs_writers_leave_databricks_roots_to_spark(monkeypatch):
    from lib.lake.local_writer import unusable_reason

    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    # a Spark Connect session whose plain paths resolve to file: still must not let delta-rs write a volume
    assert unusable_reason("file:///", [], "/Volumes/main/raw/lake/lake") == (
        "the lake is in a Unity Catalog volume (a FUSE path: Spark's Delta writer on Databricks)")
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION")
    assert unusable_reason("file:///", [], "/tmp/lake") is None
