"""The `storage:` settings in a real session, read back by hadoop-azure 3.4.1's own classes (no network:
token providers are built, not asked for tokens), and the jars from `make setup` next to pyspark's."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pyspark

from lib.config import parse_config
from tests.integration.conftest import job_env

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"shop": {"type": "postgres", "connection": {"host": "h", "database": "d", "user": "u", "password": "p"}, "schemas": ["public"]}}
ACCOUNTS = {
    "keyacct": {"auth": "account_key", "key": "a2V5a2V5a2V5a2V5"},
    "sasacct": {"auth": "sas", "sas_token": "sv=2024-01-01&sig=abc"},
    "spacct": {"auth": "service_principal", "tenant_id": "tenant-1", "client_id": "client-1", "client_secret": "sp-secret-1"},
    "miacct": {"auth": "managed_identity", "client_id": "uami-1"},
    "wiacct": {"auth": "workload_identity", "tenant_id": "tenant-2", "client_id": "client-2", "token_file": "/tmp/wi-token"},
}


def _config():
    return parse_config({"sources": SOURCES, "storage": {"accounts": ACCOUNTS}}, {})


def test_every_auth_mode_is_understood_by_hadoop_azure(spark):
    import _cli

    session = _cli.spark(_config(), "tests")  # the active session is reused: settings go into it
    assert session is spark
    jvm = spark.sparkContext._jvm
    conf = spark._jsparkSession.sessionState().newHadoopConf()

    def abfs(account: str):
        return jvm.org.apache.hadoop.fs.azurebfs.AbfsConfiguration(conf, f"{account}.dfs.core.windows.net")

    key = abfs("keyacct")
    assert str(key.getAuthType("keyacct.dfs.core.windows.net").name()) == "SharedKey"
    assert key.getStorageAccountKey() == "a2V5a2V5a2V5a2V5"
    sas = abfs("sasacct")
    assert str(sas.getAuthType("sasacct.dfs.core.windows.net").name()) == "SAS"
    assert sas.getSASTokenProvider().getClass().getName() == "org.apache.hadoop.fs.azurebfs.services.FixedSASTokenProvider"
    for account, provider in (("spacct", "ClientCredsTokenProvider"), ("miacct", "MsiTokenProvider"), ("wiacct", "WorkloadIdentityTokenProvider")):
        cfg = abfs(account)
        assert str(cfg.getAuthType(f"{account}.dfs.core.windows.net").name()) == "OAuth"
        assert cfg.getTokenProvider().getClass().getName() == f"org.apache.hadoop.fs.azurebfs.oauth2.{provider}"
    assert abfs("spacct").getPasswordString("fs.azure.account.oauth2.client.endpoint") == "https://login.microsoftonline.com/tenant-1/oauth2/token"
    assert abfs("wiacct").getPasswordString("fs.azure.account.oauth2.token.file") == "/tmp/wi-token"
    # set through the public session conf only (the same on Spark Connect): a child session carries them too
    from lib.sessions import child_session

    child = child_session(spark)
    assert child.conf.get("fs.azure.account.oauth2.client.id.miacct.dfs.core.windows.net") == "uami-1"
    child_conf = child._jsparkSession.sessionState().newHadoopConf()
    assert jvm.org.apache.hadoop.fs.azurebfs.AbfsConfiguration(child_conf, "keyacct.dfs.core.windows.net").getStorageAccountKey() == "a2V5a2V5a2V5a2V5"


def test_a_new_session_gets_the_settings_at_build_and_loads_the_azure_file_systems(tmp_path):
    """A fresh process: `spark.hadoop.*` at build time, the abfss/wasbs classes from jars/."""
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'jobs')!r})
        import _cli
        from lib.config import parse_config
        config = parse_config({{"sources": {SOURCES!r}, "storage": {{"accounts": {ACCOUNTS!r}}}}}, {{}})
        spark = _cli.spark(config, "probe")
        print("BUILD", spark.sparkContext.getConf().get("spark.hadoop.fs.azure.account.key.keyacct.dfs.core.windows.net"))
        jvm = spark.sparkContext._jvm
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        for scheme in ("abfss", "abfs", "wasbs", "wasb"):
            print("FS", scheme, jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, hadoop).getName())
        spark.stop()
    """))
    env = {k: v for k, v in job_env().items() if k != "PYSPARK_GATEWAY_PORT"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "BUILD a2V5a2V5a2V5a2V5" in lines
    assert "FS abfss org.apache.hadoop.fs.azurebfs.SecureAzureBlobFileSystem" in lines
    assert "FS abfs org.apache.hadoop.fs.azurebfs.AzureBlobFileSystem" in lines
    assert "FS wasbs org.apache.hadoop.fs.azure.NativeAzureFileSystem$Secure" in lines
    assert "FS wasb org.apache.hadoop.fs.azure.NativeAzureFileSystem" in lines
    assert "a2V5a2V5a2V5a2V5" not in result.stderr  # the log line names accounts and modes, never keys


def test_jars_add_no_class_that_pyspark_already_ships():
    """hadoop-azure's dependencies next to hadoop-client-api/-runtime: no class twice on the classpath."""
    ours = sorted(glob.glob(str(ROOT / "jars" / "*.jar")))
    assert any(Path(j).name == "hadoop-azure-3.4.1.jar" for j in ours), "make setup did not resolve hadoop-azure 3.4.1"
    shipped = sorted(glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "*.jar")))
    hadoop_api = [Path(j).name for j in shipped if Path(j).name.startswith("hadoop-client-api-")]
    assert hadoop_api == ["hadoop-client-api-3.4.1.jar"], f"pyspark's Hadoop changed ({hadoop_api}): update hadoop.version in jars/pom.xml"

    def classes(jar: str) -> set[str]:
        with zipfile.ZipFile(jar) as z:
            return {n for n in z.namelist() if n.endswith(".class") and not n.startswith("META-INF/") and n != "module-info.class"}

    theirs: dict[str, str] = {}
    for jar in shipped:
        for name in classes(jar):
            theirs.setdefault(name, Path(jar).name)
    stub = "org/apache/spark/unused/UnusedStubClass.class"  # an empty marker class every Spark module carries
    clashes = {Path(j).name: sorted(c for c in classes(j) & theirs.keys() if c != stub)[:3] for j in ours}
    assert {jar: c for jar, c in clashes.items() if c} == {}

