"""What running on Spark Connect rests on, without a JVM: the job's session choice (jobs/_session.py), the local
server's properties, Spark file paths, and the Python file system for deletes and small writes (lib/lake/pyfs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lib.config import parse_config
from lib.errors import PipelineError
from lib.lake import pyfs
from lib.lake.azure_auth import storage_settings
from lib.lake.storage import delta_sql_ref, spark_file_path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "jobs"))
SOURCES = {"shop": {"type": "postgres", "connection": {"host": "h", "database": "d", "user": "u", "password": "p"}, "schemas": ["public"]}}


def settings_of(accounts: dict) -> dict[str, str]:
    return storage_settings(parse_config({"sources": SOURCES, "storage": {"accounts": accounts}}, {}).storage)


def options(path: str, accounts: dict, prefix: str = "") -> dict:
    settings = {prefix + k: v for k, v in settings_of(accounts).items()}
    parsed = pyfs.parse_azure(path)
    assert parsed is not None
    return pyfs.azure_options(parsed, settings.get if not prefix else lambda k: settings.get(k) or settings.get(prefix + k))


def test_azure_paths_are_split_into_container_account_and_key() -> None:
    p = pyfs.parse_azure("abfss://lake@acct.dfs.core.windows.net/shop/public/Order Lines")
    assert p == pyfs.AzurePath("abfss", "lake", "acct.dfs.core.windows.net", "shop/public/Order Lines") and p.account == "acct"
    assert pyfs.parse_azure("wasbs://c@acct.blob.core.windows.net") == pyfs.AzurePath("wasbs", "c", "acct.blob.core.windows.net", "")
    assert pyfs.parse_azure("/lake/shop") is None and pyfs.parse_azure("dbfs:/lake") is None and pyfs.parse_azure("s3://b/k") is None


def test_every_storage_mode_becomes_pyarrow_azure_arguments() -> None:
    path = "abfss://lake@acct.dfs.core.windows.net/x"
    assert options(path, {"acct": {"auth": "account_key", "key": "a2V5"}}) == {"account_name": "acct", "account_key": "a2V5"}
    assert options(path, {"acct": {"auth": "sas", "sas_token": "?sv=1&sig=2"}}) == {"account_name": "acct", "sas_token": "sv=1&sig=2"}
    assert options(path, {"acct": {"auth": "service_principal", "tenant_id": "t-1", "client_id": "c-1", "client_secret": "s-1"}}) == {
        "account_name": "acct", "client_id": "c-1", "tenant_id": "t-1", "client_secret": "s-1"}
    assert options(path, {"acct": {"auth": "managed_identity", "client_id": "uami"}}) == {"account_name": "acct", "client_id": "uami"}
    assert options(path, {"acct": {"auth": "managed_identity"}}) == {"account_name": "acct"}  # Azure's default credential chain
    assert options(path, {"acct": {"auth": "workload_identity", "tenant_id": "t", "client_id": "c"}}) == {"account_name": "acct"}
    assert options(path, {"acct": {"auth": "none"}}) == {"account_name": "acct"}
    # the same settings given at build time (spark.hadoop.*)
    assert options(path, {"acct": {"auth": "account_key", "key": "a2V5"}}, prefix="spark.hadoop.") == {"account_name": "acct", "account_key": "a2V5"}


def test_the_wasb_emulator_mode_reaches_azurite_and_sovereign_clouds_keep_their_suffix() -> None:
    emulated = options("wasb://lakehouse@devstoreaccount1.blob.core.windows.net/lake", {"devstoreaccount1": {"auth": "emulator"}})
    assert emulated["account_name"] == "devstoreaccount1" and emulated["blob_storage_authority"] == "127.0.0.1:10000"
    assert emulated["blob_storage_scheme"] == "http" and emulated["account_key"] == pyfs.EMULATOR_KEY
    china = pyfs.azure_options(pyfs.parse_azure("abfss://c@acct.dfs.core.chinacloudapi.cn/x"), {}.get)  # type: ignore[arg-type]
    assert china == {"account_name": "acct", "blob_storage_authority": ".blob.core.chinacloudapi.cn", "dfs_storage_authority": ".dfs.core.chinacloudapi.cn"}


def test_blob_endpoints_are_the_accounts_or_azurites() -> None:
    assert pyfs.blob_endpoint({"account_name": "acct"}) == "https://acct.blob.core.windows.net"
    assert pyfs.blob_endpoint({"account_name": "acct", "blob_storage_authority": ".blob.core.chinacloudapi.cn"}) == "https://acct.blob.core.chinacloudapi.cn"
    emulated = options("wasb://lakehouse@devstoreaccount1.blob.core.windows.net/lake", {"devstoreaccount1": {"auth": "emulator"}})
    assert pyfs.blob_endpoint(emulated) == "http://127.0.0.1:10000/devstoreaccount1"


def test_modes_pyarrow_cannot_use_fail_naming_the_account() -> None:
    provider = {"fs.azure.account.auth.type.acct.dfs.core.windows.net": "SAS",
                "fs.azure.sas.token.provider.type.acct.dfs.core.windows.net": "com.example.MyProvider"}
    with pytest.raises(PipelineError, match=r"acct\.dfs\.core\.windows\.net: a SAS token provider class"):
        pyfs.azure_options(pyfs.parse_azure("abfss://c@acct.dfs.core.windows.net/x"), provider.get)  # type: ignore[arg-type]
    sovereign = settings_of({"acct": {"auth": "service_principal", "tenant_id": "t", "client_id": "c", "client_secret": "s",
                                      "authority": "https://login.chinacloudapi.cn/"}})
    with pytest.raises(PipelineError, match=r"a service principal outside login\.microsoftonline\.com"):
        pyfs.azure_options(pyfs.parse_azure("abfss://c@acct.dfs.core.windows.net/x"), sovereign.get)  # type: ignore[arg-type]


def test_spark_file_paths_escape_glob_characters_and_sql_paths_escape_backquotes() -> None:
    assert spark_file_path("/lake/shop/public/orders") == "/lake/shop/public/orders"
    assert spark_file_path("/lake/s/a[1]{x}*?") == r"/lake/s/a\[1\]\{x\}\*\?"
    assert spark_file_path("abfss://c@a.dfs.core.windows.net/t\\u") == "abfss://c@a.dfs.core.windows.net/t\\\\u"
    assert delta_sql_ref("/lake/a`b") == "delta.`/lake/a``b`"


def test_local_deletes_and_writes_need_spark_to_see_this_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lib.lake import local_writer

    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.setattr(local_writer, "default_filesystem", lambda spark: "file:///")
    target = tmp_path / "lake" / "reports" / "r.json"
    pyfs.write_text(None, str(target), "{}")  # type: ignore[arg-type]
    assert target.read_text() == "{}"
    assert pyfs.delete(None, f"file://{tmp_path / 'lake'}") and not (tmp_path / "lake").exists()  # type: ignore[arg-type]
    assert not pyfs.delete(None, str(tmp_path / "lake"))  # type: ignore[arg-type]
    monkeypatch.setattr(local_writer, "default_filesystem", lambda spark: "another machine's disk")
    with pytest.raises(PipelineError, match="Spark resolves it on another machine's disk"):
        pyfs.delete(None, str(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="no Python file system for s3://"):
        pyfs.write_text(None, "s3://bucket/r.json", "{}")  # type: ignore[arg-type]


def test_a_job_with_spark_remote_fails_fast_when_no_server_answers() -> None:
    import socket

    import _session

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemExit, match=rf"no Spark Connect server answers at 127.0.0.1:{port} .*scripts/stack.sh up spark-connect"):
        _session.connect_session(f"sc://127.0.0.1:{port}")
    with pytest.raises(SystemExit, match="expected sc://host:port"):
        _session.connect_session("http://127.0.0.1:15002")


def test_the_local_server_has_what_a_local_session_has_plus_a_metastore(tmp_path: Path) -> None:
    import _session

    if not _session.project_jars():
        pytest.skip("jars/ holds no jars (make setup)")
    conf = _session.connect_server_conf(str(tmp_path), 15002, "2g")
    for key in ("spark.sql.extensions", "spark.sql.catalog.spark_catalog", "spark.sql.session.timeZone", "spark.redaction.regex",
                "spark.sql.parquet.outputTimestampType"):
        assert conf[key] == {**_session.LOCAL_CONF, "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}[key]
    assert conf["spark.jars"] == ",".join(_session.project_jars()) and conf["spark.master"] == "local[2]"
    assert conf["spark.sql.catalogImplementation"] == "hive"
    assert conf["spark.hadoop.javax.jdo.option.ConnectionURL"] == f"jdbc:derby:;databaseName={tmp_path}/metastore_db;create=true"
    assert conf["spark.connect.grpc.binding.address"] == "127.0.0.1" and conf["spark.connect.grpc.binding.port"] == "15002"
    assert "-Duser.timezone=UTC" in conf["spark.driver.extraJavaOptions"]


class _Reader:
    def __init__(self, outcome: object) -> None:
        self.outcome = outcome

    def format(self, _: str) -> _Reader:
        return self

    def load(self, path: str) -> _Reader:
        self.path = path
        return self

    def inputFiles(self) -> list[str]:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return [str(self.outcome).format(path=self.path)]


class _Session:
    def __init__(self, app: str, outcome: object) -> None:
        self.read = _Reader(outcome)
        self.conf = type("Conf", (), {"get": staticmethod(lambda key, default=None: app)})()


@pytest.mark.parametrize(("outcome", "expected"), [
    ("file://{path}", "file:///"),  # a local session, or a Spark Connect server on this machine
    ("dbfs:{path}", "dbfs:"),
    ("PATH_NOT_FOUND dbfs", "dbfs:"),  # Databricks: plain paths are DBFS's
    ("PATH_NOT_FOUND file", "another machine's disk"),  # a Spark Connect server elsewhere
])
def test_where_plain_paths_resolve_is_asked_of_spark_once_per_application(outcome: str, expected: str) -> None:
    from pyspark.errors import AnalysisException

    from lib.lake import local_writer

    if outcome.startswith("PATH_NOT_FOUND"):
        scheme = outcome.split()[1]
        outcome = AnalysisException(message=f"[PATH_NOT_FOUND] Path does not exist: {scheme}:/tmp/p.txt. SQLSTATE: 42K03",  # type: ignore[assignment]
                                    errorClass="PATH_NOT_FOUND", messageParameters={})
    app = f"app-{expected}-{id(outcome)}"
    session = _Session(app, outcome)
    assert local_writer.default_filesystem(session) == expected  # type: ignore[arg-type]
    assert not Path(session.read.path).exists()  # the probe file is removed
    session.read.outcome = RuntimeError("not asked again")
    assert local_writer.default_filesystem(session) == expected  # type: ignore[arg-type]
