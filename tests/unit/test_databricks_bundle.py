"""The Databricks Asset Bundle, checked offline: databricks.yml + resources/*.yml loaded, variables resolved,
every job validated by the `databricks-bundles` package's models (strict: an unknown field is an error),
every task pointing at an existing entry point of the wheel with parameters its job's parser accepts."""

from __future__ import annotations

import importlib
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from databricks.bundles.jobs import Job

from lib.config import parse_config
from lib.config.envsubst import Lookups

ROOT = Path(__file__).resolve().parents[2]
FILE_PATH = "/Workspace/Users/someone@example.com/.bundle/lakehouse-ingest/dev/files"


def _resolve(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    if isinstance(value, str):
        value = value.replace("${workspace.file_path}", FILE_PATH)
        return re.sub(r"\$\{var\.([a-z_]+)\}", lambda m: str(variables[m.group(1)]), value)
    return value


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    main = yaml.safe_load((ROOT / "databricks.yml").read_text())
    jobs: dict[str, Any] = {}
    for pattern in main["include"]:
        for path in sorted(ROOT.glob(pattern)):
            jobs.update(yaml.safe_load(path.read_text())["resources"]["jobs"])
    variables = {name: spec["default"] for name, spec in main["variables"].items()}
    variables = {name: _resolve(v, variables) for name, v in variables.items()}
    return {"main": main, "jobs": _resolve(jobs, variables), "variables": variables}


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_three_jobs_validate_against_the_bundle_models(bundle):
    assert set(bundle["jobs"]) == {"lakehouse_bulk_load", "lakehouse_cdc_stream", "lakehouse_validate"}
    for name, spec in bundle["jobs"].items():
        job = Job.from_dict(spec)  # raises on any field the Jobs API does not have
        assert job.tasks, name


def test_models_reject_an_unknown_field(bundle):
    spec = dict(bundle["jobs"]["lakehouse_validate"], schedulee={"quartz_cron_expression": "0 0 * * * ?"})
    with pytest.raises(ValueError, match="Unexpected field 'schedulee'"):
        Job.from_dict(spec)


def test_bulk_load_then_validate_stream_continuous_validate_alone(bundle):
    bulk = bundle["jobs"]["lakehouse_bulk_load"]["tasks"]
    assert [t["task_key"] for t in bulk] == ["bulk_load", "validate"]
    assert bulk[1]["depends_on"] == [{"task_key": "bulk_load"}]
    stream = bundle["jobs"]["lakehouse_cdc_stream"]
    assert stream["continuous"] == {"pause_status": "UNPAUSED"} and "schedule" not in stream
    assert [t["python_wheel_task"]["entry_point"] for t in stream["tasks"]] == ["lakehouse-cdc-stream"]
    assert [t["python_wheel_task"]["entry_point"] for t in bundle["jobs"]["lakehouse_validate"]["tasks"]] == ["lakehouse-validate"]


def test_clusters_pinned_to_dbr_17_3_lts_and_no_kafka_or_delta_jars(bundle):
    for spec in bundle["jobs"].values():
        for cluster in spec["job_clusters"]:
            assert cluster["new_cluster"]["spark_version"] == "17.3.x-scala2.13"
        for task in spec["tasks"]:
            libraries = task["libraries"]
            assert {"whl": "../dist/*.whl"} in libraries  # the wheel the bundle builds
            coordinates = [lib["maven"]["coordinates"] for lib in libraries if "maven" in lib]
            assert coordinates == ["com.oracle.database.jdbc:ojdbc11:23.8.0.25.04"]  # the JDBC driver the runtime lacks
            assert not [lib for lib in libraries if "jar" in lib]
    pom = (ROOT / "jars" / "pom.xml").read_text()
    assert "<artifactId>ojdbc11</artifactId><version>23.8.0.25.04</version>" in pom  # the driver version the project tests


def test_the_bundle_builds_the_wheel_the_tasks_install(bundle, scripts):
    artifact = bundle["main"]["artifacts"]["lakehouse_wheel"]
    assert artifact["type"] == "whl" and artifact["path"] == "."
    assert "pip wheel" in artifact["build"] and "--wheel-dir dist" in artifact["build"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    for spec in bundle["jobs"].values():
        for task in spec["tasks"]:
            assert task["python_wheel_task"]["package_name"] == project.replace("-", "_")


def test_every_task_runs_an_existing_entry_point_with_parameters_its_parser_accepts(bundle, scripts, monkeypatch):
    sys.path.insert(0, str(ROOT / "jobs"))
    import _cli

    class Parsed(Exception):
        def __init__(self, args: Any) -> None:
            self.args_ = args

    def stop_after_parsing(args: Any) -> None:
        raise Parsed(args)

    monkeypatch.setattr(_cli, "load", stop_after_parsing)
    seen = set()
    for spec in bundle["jobs"].values():
        defaults = {p["name"]: p["default"] for p in spec["parameters"]}
        for task in spec["tasks"]:
            wheel_task = task["python_wheel_task"]
            target = scripts[wheel_task["entry_point"]]  # KeyError: no such entry point in the wheel
            module, function = target.split(":")
            assert callable(getattr(importlib.import_module(module), function))
            job_module = importlib.import_module(f"jobs.{function}")
            argv = [re.sub(r"\{\{job\.parameters\.([a-z_]+)\}\}", lambda m, d=defaults: d[m.group(1)], a) for a in wheel_task["parameters"]]
            monkeypatch.setattr(sys, "argv", [wheel_task["entry_point"], *argv])
            with pytest.raises(Parsed) as parsed:
                job_module.main()  # argparse exits 2 on a bad flag before load()
            args = parsed.value.args_
            assert args.config == f"{FILE_PATH}/config/pipeline_databricks.yaml" and args.source == "shop"
            seen.add(wheel_task["entry_point"])
    assert seen == {"lakehouse-bulk-load", "lakehouse-cdc-stream", "lakehouse-validate"}


def test_the_config_the_jobs_point_at_is_shipped_and_valid(bundle):
    config_path = bundle["variables"]["config"]
    assert config_path.startswith(FILE_PATH + "/")
    local = ROOT / config_path[len(FILE_PATH) + 1:]
    secrets = {("lakehouse", "shop-db-password"): "from-the-scope"}
    lookups = Lookups(read_file=lambda p: "", read_secret=lambda scope, key: secrets[(scope, key)])
    cfg = parse_config(yaml.safe_load(local.read_text()), {}, lookups)
    assert cfg.lake.root.startswith("abfss://") and cfg.checkpoints_root.startswith("abfss://")
    assert [a.auth for a in cfg.storage] == ["none"]
    assert cfg.source(bundle["variables"]["source"]).connection.password == "from-the-scope"
    assert "from-the-scope" in cfg.secrets()


def test_clusters_redact_the_secret_settings_the_jobs_set(bundle):
    """The bundle's clusters start with the jobs' redaction pattern: a task reuses the cluster's session,
    which cannot take spark.redaction.regex at run time."""
    from lib.lake.session_conf import SECRET_REDACTION_REGEX

    for spec in bundle["jobs"].values():
        for cluster in spec["job_clusters"]:
            assert cluster["new_cluster"]["spark_conf"]["spark.redaction.regex"] == SECRET_REDACTION_REGEX
