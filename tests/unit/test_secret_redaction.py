"""spark.redaction.regex (lib.lake.session_conf): every secret-bearing setting the jobs set is redacted in the
Spark UI and event logs, Spark's default terms still are, and every place that builds a session carries it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lib.config.model import STORAGE_AUTH_MODES, StorageAccount
from lib.lake.azure_auth import hadoop_settings, spark_hadoop_conf
from lib.lake.session_conf import (
    SECRET_REDACTION_REGEX,
    SPARK_DEFAULT_REDACTION_REGEX,
    secret_redaction_conf,
    unredacted,
)

ROOT = Path(__file__).resolve().parents[2]

# Every field filled, so each mode produces every setting it can; sas twice (a fixed token, a provider class).
FIELDS = dict(key="ACCOUNT-KEY-VALUE", tenant_id="tenant-1", client_id="client-1", client_secret="CLIENT-SECRET-VALUE",
              msi_endpoint="http://169.254.169.254/metadata/identity/oauth2/token", token_file="/var/run/token")


def accounts() -> list[StorageAccount]:
    out = []
    for mode in STORAGE_AUTH_MODES:
        if mode == "sas":
            out.append(StorageAccount(name="acct", auth="sas", sas_token="SAS-TOKEN-VALUE"))
            out.append(StorageAccount(name="acct", auth="sas", sas_provider="com.example.SasProvider"))
        else:
            out.append(StorageAccount(name="acct", auth=mode, **FIELDS))  # type: ignore[arg-type]
    return out


def secret_setting_names() -> dict[str, list[str]]:
    """{auth mode: the names of the settings whose value is one of the account's secrets}, from the real
    functions, as Hadoop names and as the spark.hadoop.* names a built session carries."""
    names: dict[str, list[str]] = {}
    for account in accounts():
        settings = hadoop_settings(account)
        secret = {k for k, v in settings.items() if v in account.secrets()}
        names.setdefault(account.auth, []).extend(sorted(secret))
        names[account.auth].extend(k for k, v in spark_hadoop_conf(settings).items() if v in account.secrets())
    return names


def redacted(name: str, regex: str = SECRET_REDACTION_REGEX) -> bool:
    return re.search(regex, name) is not None  # Spark: regex.findFirstIn(key).isDefined


def test_every_secret_setting_of_every_auth_mode_is_redacted():
    names = secret_setting_names()
    assert set(names) == set(STORAGE_AUTH_MODES)
    every = [n for mode_names in names.values() for n in mode_names]
    # the modes that carry a secret produce it (the test is not vacuous)
    assert "fs.azure.account.key.acct.dfs.core.windows.net" in names["account_key"]
    assert "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net" in names["account_key"]
    assert "fs.azure.sas.fixed.token.acct.dfs.core.windows.net" in names["sas"]
    assert "fs.azure.account.oauth2.client.secret.acct.dfs.core.windows.net" in names["service_principal"]
    assert len(every) == 6
    assert [n for n in every if not redacted(n)] == []
    assert unredacted(every, SECRET_REDACTION_REGEX) == []


def test_spark_default_misses_the_account_key_which_is_why_the_jobs_set_their_own():
    assert unredacted(["spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net"], None) == [
        "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net"
    ]


@pytest.mark.parametrize("name", [
    "fs.azure.account.key.acct.blob.core.windows.net",
    "fs.azure.sas.token.provider.type.acct.dfs.core.windows.net",
    "fs.azure.sas.acct.blob.core.windows.net",  # WASB's SAS setting
    "fs.azure.account.oauth2.client.secret",
])
def test_the_azure_terms(name):
    assert redacted(name)


@pytest.mark.parametrize("name", [
    "spark.ssl.keyStorePassword", "spark.authenticate.secret", "spark.hadoop.fs.s3a.secret.key", "some.TOKEN",
    "spark.hadoop.fs.s3a.access.key", "fs.s3.awsAccessKeyId", "accesskey",
])
def test_spark_default_terms_are_kept(name):
    assert redacted(name, SPARK_DEFAULT_REDACTION_REGEX)  # a name the default redacts ...
    assert redacted(name)  # ... stays redacted
    assert SECRET_REDACTION_REGEX.startswith(SPARK_DEFAULT_REDACTION_REGEX + "|")


@pytest.mark.parametrize("name", [
    "fs.azure.account.auth.type.acct.dfs.core.windows.net",
    "fs.azure.account.oauth2.client.id.acct.dfs.core.windows.net",
    "fs.azure.account.oauth2.client.endpoint.acct.dfs.core.windows.net",
    "fs.azure.account.oauth.provider.type.acct.dfs.core.windows.net",
    "spark.sql.session.timeZone",
])
def test_settings_without_secrets_stay_readable(name):
    assert not redacted(name)


def test_the_conf_is_one_setting_and_every_session_builder_carries_it(monkeypatch):
    assert secret_redaction_conf() == {"spark.redaction.regex": SECRET_REDACTION_REGEX}
    monkeypatch.syspath_prepend(str(ROOT / "jobs"))
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from _session import LOCAL_CONF  # the session python jobs/... builds
    from spark_submit_conf import properties  # dist/spark-submit.conf

    assert LOCAL_CONF["spark.redaction.regex"] == SECRET_REDACTION_REGEX
    assert f"spark.redaction.regex {SECRET_REDACTION_REGEX}" in properties(["/x.jar"], LOCAL_CONF)


def test_unredacted_claims_nothing_for_a_pattern_python_cannot_read():
    assert unredacted(["fs.azure.account.key.a"], "(?i)key\\p{javaLowerCase}[") == []
    assert unredacted(["fs.azure.account.key.a", "x.secret"], "(?i)secret") == ["fs.azure.account.key.a"]
