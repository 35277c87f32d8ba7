"""The wheel installs on Databricks Runtime 17.3 LTS without replacing the runtime's own Python libraries
(constraints-dbr-17.3.txt): every requirement it brings, its dependencies' included, admits the runtime's
version, and it declares neither Spark nor Delta (the runtime's). Offline: the metadata of what is
installed here stands for the new packages (tests/unit/dbr_env.py)."""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.unit.dbr_env import DBR_CONSTRAINTS, resolve, runtime_versions, wheel_requirements


def test_the_runtime_list_holds_the_libraries_that_matter_here():
    runtime = runtime_versions()
    assert len(runtime) > 200
    # the versions the header of constraints-dbr-17.3.txt names as the source's
    expected = {"pandas": "2.2.3", "numpy": "2.1.3", "pyarrow": "19.0.1", "protobuf": "5.29.4", "grpcio": "1.67.0", "pyyaml": "6.0.2", "psycopg2": "2.9.3"}
    assert {name: str(runtime[name]) for name in expected} == expected
    assert "pyspark" not in runtime and "delta-spark" not in runtime
    assert "Databricks Runtime 17.3 LTS" in DBR_CONSTRAINTS.read_text().splitlines()[0]


def test_the_wheel_declares_no_spark_delta_or_arrow():
    names = {canonicalize_name(r.name) for r in wheel_requirements()}
    assert not names & {"pyspark", "delta-spark", "databricks-connect", "pyspark-client", "pyarrow"}


def test_nothing_the_wheel_brings_replaces_a_runtime_library():
    result = resolve(wheel_requirements())
    assert result.replaced == []
    assert result.unknown == []  # every new package's requirements were read
    # the runtime's own serve these: the wheel installs none of them
    assert {"pyyaml", "pandas", "numpy", "jinja2", "jsonschema", "pydantic", "scipy", "requests", "cryptography"} <= set(result.kept)
    assert {"confluent-kafka", "great-expectations"} <= set(result.new)


def test_great_expectations_pins_fit_the_runtime():
    """great-expectations 1.6.4 capped pandas below 2.2 (the runtime has 2.2.3): installing it would have
    downgraded pandas under the runtime's numpy 2.1. The pinned version admits the runtime's pandas,
    numpy and pyarrow."""
    import importlib.metadata as md

    runtime = runtime_versions()
    gx = md.distribution("great-expectations")
    assert Requirement(next(r for r in wheel_requirements() if canonicalize_name(r.name) == "great-expectations").__str__()).specifier.contains(gx.version)
    for line in gx.requires or ():
        req = Requirement(line)
        if canonicalize_name(req.name) in {"pandas", "numpy", "pyarrow"} and (req.marker is None or req.marker.evaluate({"python_version": "3.12", "python_full_version": "3.12.3", "extra": ""})):
            assert req.specifier.contains(runtime[canonicalize_name(req.name)]), line
    # great-expectations 1.6.4's own lines (its METADATA), caught by the same check
    ge_164 = ['pandas<2.2,>=1.3.0; python_version >= "3.10"', 'numpy>=1.22.4; python_version >= "3.10"']
    replaced = resolve([Requirement(line) for line in ge_164]).replaced
    assert replaced == ['the wheel requires pandas<2.2,>=1.3.0; python_version >= "3.10": the runtime has pandas 2.2.3']


def test_the_check_fails_on_a_replacement():
    for line, library in (("pyyaml==6.0.3", "pyyaml 6.0.2"), ("protobuf>=6", "protobuf 5.29.4"), ("grpcio<1.60", "grpcio 1.67.0")):
        (message,) = resolve([Requirement(line)]).replaced
        assert message.endswith(f"the runtime has {library}")
    # a new package's own requirement on a runtime library is checked too
    replaced = resolve([Requirement("great-expectations==1.7.1")], {"numpy": Version("1.25.2")}).replaced
    assert any(re.fullmatch(r'great-expectations 1\.7\.1 requires numpy>=1\.26\.0; python_version >= "3\.12": the runtime has numpy 1\.25\.2', m) for m in replaced), replaced


def test_the_standalone_extra_is_what_databricks_must_not_install():
    """psycopg2-binary is a second copy of the runtime's psycopg2 module; deltalake 1.6.6 would upgrade the
    runtime's deprecated 1.2.13 (it requires >= 1.2.18) for fast paths that never write on Databricks; azure-storage-blob
    12.31.1 would replace the runtime's 12.23.0 (wasb[s]:// deletes and reports from Python, lib/lake/pyfs.py)."""
    names = {canonicalize_name(r.name) for r in wheel_requirements("standalone")}
    assert names == {"psycopg2-binary", "deltalake", "azure-storage-blob"}
    replaced = resolve(wheel_requirements("standalone")).replaced
    assert any(m.startswith("deltalake 1.6.6 requires deprecated>=1.2.18") for m in replaced), replaced
    assert "the wheel requires azure-storage-blob==12.31.1: the runtime has azure-storage-blob 12.23.0" in replaced, replaced
    assert "psycopg2" in runtime_versions()
