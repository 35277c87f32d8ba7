"""The Databricks Asset Bundle, checked offline: databricks.yml + resources/*.yml loaded and merged as the CLI
does, variables resolved, both shapes (classic job clusters: targets dev, prod; serverless environments:
targets serverless-dev, serverless-prod) with every job validated by the `databricks-bundles` package's
models (strict: an unknown field is an error), every task pointing at an existing entry point of the wheel
with parameters its job's parser accepts."""

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


def _merge(base: Any, override: Any) -> Any:
    """The bundle's merge of two configuration trees: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: _merge(base[k], override[k]) if k in base and k in override else override.get(k, base.get(k)) for k in {**base, **override}}
    return override


CLASSIC = ("dev", "prod")
SERVERLESS = ("serverless-dev", "serverless-prod")


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    """databricks.yml with its includes merged (their `targets` too), then per target the jobs the CLI
    would deploy: the top-level resources merged with the target's, variables resolved to their defaults."""
    main = yaml.safe_load((ROOT / "databricks.yml").read_text())
    merged = dict(main)
    for pattern in main["include"]:
        for path in sorted(ROOT.glob(pattern)):
            merged = _merge(merged, yaml.safe_load(path.read_text()))
    variables = {name: spec["default"] for name, spec in main["variables"].items()}
    variables = {name: _resolve(v, variables) for name, v in variables.items()}
    targets = {}
    for name, target in merged["targets"].items():
        jobs = _merge((merged.get("resources") or {}).get("jobs", {}), (target.get("resources") or {}).get("jobs", {}))
        targets[name] = {"mode": target.get("mode"), "default": target.get("default", False), "jobs": _resolve(jobs, variables)}
    return {"main": main, "merged": merged, "targets": targets, "variables": variables}


def _jobs(bundle: dict[str, Any], shape: tuple[str, ...]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(target, name, spec) for target in shape for name, spec in bundle["targets"][target]["jobs"].items()]


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_two_shapes_in_four_targets_classic_the_default():
    bundle_targets = _targets()
    assert set(bundle_targets) == {*CLASSIC, *SERVERLESS}
    assert {t: bundle_targets[t].get("mode") for t in bundle_targets} == {
        "dev": "development", "prod": "production", "serverless-dev": "development", "serverless-prod": "production",
    }
    assert [t for t, spec in bundle_targets.items() if spec.get("default")] == ["dev"]


def _targets() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "databricks.yml").read_text())["targets"]


def test_no_jobs_outside_the_targets(bundle):
    """Each shape's jobs are defined inside its targets: a deploy creates one shape, never both."""
    assert "resources" not in bundle["merged"]


def test_every_target_has_the_three_jobs_and_they_validate_against_the_bundle_models(bundle):
    for target, spec in bundle["targets"].items():
        assert set(spec["jobs"]) == {"lakehouse_bulk_load", "lakehouse_cdc_stream", "lakehouse_validate"}, target
        for name, job_spec in spec["jobs"].items():
            job = Job.from_dict(job_spec)  # raises on any field the Jobs API does not have
            assert job.tasks, (target, name)


def test_models_reject_an_unknown_field(bundle):
    spec = dict(bundle["targets"]["dev"]["jobs"]["lakehouse_validate"], schedulee={"quartz_cron_expression": "0 0 * * * ?"})
    with pytest.raises(ValueError, match="Unexpected field 'schedulee'"):
        Job.from_dict(spec)


def test_bulk_load_then_validate_and_validate_alone_in_both_shapes(bundle):
    for target in (*CLASSIC, *SERVERLESS):
        jobs = bundle["targets"][target]["jobs"]
        bulk = jobs["lakehouse_bulk_load"]["tasks"]
        assert [t["task_key"] for t in bulk] == ["bulk_load", "validate"]
        assert bulk[1]["depends_on"] == [{"task_key": "bulk_load"}]
        assert [t["python_wheel_task"]["entry_point"] for t in jobs["lakehouse_validate"]["tasks"]] == ["lakehouse-validate"]
        assert [t["python_wheel_task"]["entry_point"] for t in jobs["lakehouse_cdc_stream"]["tasks"]] == ["lakehouse-cdc-stream"]


def test_classic_stream_is_continuous(bundle):
    for target in CLASSIC:
        stream = bundle["targets"][target]["jobs"]["lakehouse_cdc_stream"]
        assert stream["continuous"] == {"pause_status": "UNPAUSED"} and "schedule" not in stream
        assert "--available-now" not in stream["tasks"][0]["python_wheel_task"]["parameters"]


def test_serverless_stream_catches_up_on_a_schedule(bundle):
    """Serverless streams in incremental batches only: a scheduled run that applies what Kafka holds and stops."""
    for target in SERVERLESS:
        stream = bundle["targets"][target]["jobs"]["lakehouse_cdc_stream"]
        assert "continuous" not in stream and "trigger" not in stream
        assert stream["schedule"] == {"quartz_cron_expression": "0 0/5 * * * ?", "timezone_id": "UTC", "pause_status": "UNPAUSED"}
        assert stream["max_concurrent_runs"] == 1  # a run still catching up makes the next one skip
        (task,) = stream["tasks"]
        assert task["python_wheel_task"]["parameters"][-1] == "--available-now"


def _walk(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in [(k, v), *_walk(v)]]
    if isinstance(value, list):
        return [pair for v in value for pair in _walk(v)]
    return []


def test_serverless_has_no_cluster_no_jar_no_maven_and_every_task_names_its_environment(bundle):
    for target, name, spec in _jobs(bundle, SERVERLESS):
        keys = {k for k, _ in _walk(spec)}
        assert not keys & {"job_clusters", "new_cluster", "existing_cluster_id", "job_cluster_key", "libraries", "maven", "jar", "java_dependencies"}, (target, name)
        assert not [v for _, v in _walk(spec) if isinstance(v, str) and v.endswith(".jar")]
        environments = {e["environment_key"]: e["spec"] for e in spec["environments"]}
        for task in spec["tasks"]:
            env = environments[task["environment_key"]]  # KeyError: a task naming an environment its job lacks
            assert env["environment_version"] == "4"  # Python 3.12.3, Databricks Connect 17.3
            assert env["dependencies"][0] == "../dist/*.whl"  # the wheel the bundle builds


def test_classic_clusters_pinned_to_dbr_17_3_lts_with_an_explicit_access_mode_and_only_the_oracle_driver(bundle):
    assert bundle["variables"]["data_security_mode"] == "SINGLE_USER"
    description = bundle["main"]["variables"]["data_security_mode"]["description"]
    assert "SINGLE_USER" in description and "USER_ISOLATION" in description and "Spark Connect" in description
    for _target, _name, spec in _jobs(bundle, CLASSIC):
        assert "environments" not in spec
        for cluster in spec["job_clusters"]:
            assert cluster["new_cluster"]["spark_version"] == "17.3.x-scala2.13"
            assert cluster["new_cluster"]["data_security_mode"] == "SINGLE_USER"
        for task in spec["tasks"]:
            assert "environment_key" not in task and task["job_cluster_key"] in {c["job_cluster_key"] for c in spec["job_clusters"]}
            libraries = task["libraries"]
            assert libraries[0] == {"whl": "../dist/*.whl"}  # the wheel the bundle builds
            coordinates = [lib["maven"]["coordinates"] for lib in libraries if "maven" in lib]
            assert coordinates == ["com.oracle.database.jdbc:ojdbc11:23.8.0.25.04"]  # the JDBC driver the runtime lacks
            assert not [lib for lib in libraries if "jar" in lib]
    pom = (ROOT / "jars" / "pom.xml").read_text()
    assert "<artifactId>ojdbc11</artifactId><version>23.8.0.25.04</version>" in pom  # the driver version the project tests


def test_both_shapes_install_what_the_wheel_adds_to_the_runtime_at_the_tested_versions(bundle):
    """Besides the wheel, each shape lists every package the wheel brings that Databricks Runtime 17.3 lacks
    (tests/unit/dbr_env.py), pinned to the version installed and tested here (constraints.txt), so the
    workspace resolves nothing newer behind the tests' back."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from tests.unit.dbr_env import resolve, wheel_requirements

    expected = {name: str(version) for name, version in resolve(wheel_requirements()).new.items()}
    frozen = {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    assert all(frozen[name] == version for name, version in expected.items())

    def pins(lines: list[str]) -> dict[str, str]:
        reqs = [Requirement(line) for line in lines]
        assert all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in reqs)
        return {canonicalize_name(r.name): next(iter(r.specifier)).version for r in reqs}

    for target, name, spec in _jobs(bundle, SERVERLESS):
        for env in spec["environments"]:
            assert pins(env["spec"]["dependencies"][1:]) == expected, (target, name)
    for target, name, spec in _jobs(bundle, CLASSIC):
        for task in spec["tasks"]:
            assert pins([lib["pypi"]["package"] for lib in task["libraries"] if "pypi" in lib]) == expected, (target, name)


def test_the_bundle_builds_the_wheel_the_tasks_install(bundle, scripts):
    artifact = bundle["main"]["artifacts"]["lakehouse_wheel"]
    assert artifact["type"] == "whl" and artifact["path"] == "."
    assert "pip wheel" in artifact["build"] and "--wheel-dir dist" in artifact["build"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    for _target, _name, spec in _jobs(bundle, (*CLASSIC, *SERVERLESS)):
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
    for target, _name, spec in _jobs(bundle, (*CLASSIC, *SERVERLESS)):
        defaults = {p["name"]: p["default"] for p in spec["parameters"]}
        for task in spec["tasks"]:
            wheel_task = task["python_wheel_task"]
            entry = scripts[wheel_task["entry_point"]]  # KeyError: no such entry point in the wheel
            module, function = entry.split(":")
            assert callable(getattr(importlib.import_module(module), function))
            job_module = importlib.import_module(f"jobs.{function}")
            argv = [re.sub(r"\{\{job\.parameters\.([a-z_]+)\}\}", lambda m, d=defaults: d[m.group(1)], a) for a in wheel_task["parameters"]]
            monkeypatch.setattr(sys, "argv", [wheel_task["entry_point"], *argv])
            with pytest.raises(Parsed) as parsed:
                job_module.main()  # argparse exits 2 on a bad flag before load()
            args = parsed.value.args_
            assert args.config == f"{FILE_PATH}/config/pipeline_databricks.yaml" and args.source == "shop"
            if wheel_task["entry_point"] == "lakehouse-cdc-stream":
                assert args.available_now is (target in SERVERLESS)
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


def test_the_report_goes_to_a_volume_python_writes_in_both_shapes(bundle):
    from lib.lake.paths import is_volume_path, report_target

    report = bundle["variables"]["report"]
    assert is_volume_path(report)
    assert report_target(report, {"DATABRICKS_RUNTIME_VERSION": "client.4.0"}) == Path(report)


def test_classic_clusters_redact_the_secret_settings_the_jobs_set(bundle):
    """The bundle's clusters start with the jobs' redaction pattern: a task reuses the cluster's session,
    which cannot take spark.redaction.regex at run time."""
    from lib.lake.session_conf import SECRET_REDACTION_REGEX

    for _target, _name, spec in _jobs(bundle, CLASSIC):
        for cluster in spec["job_clusters"]:
            assert cluster["new_cluster"]["spark_conf"]["spark.redaction.regex"] == SECRET_REDACTION_REGEX
