"""The `storage:` section: each auth mode's exact hadoop-azure 3.4.1 settings, and its config errors."""

import copy

import pytest

from lib.config import parse_config
from lib.config.envsubst import Lookups
from lib.errors import ConfigError
from lib.lake.azure_auth import hadoop_settings, spark_hadoop_conf, storage_settings

BASE = {
    "lake": {"root": "abfss://lake@mylake.dfs.core.windows.net/prod"},
    "sources": {"shop": {"type": "postgres", "connection": {"host": "h", "database": "d", "user": "u", "password": "pw-123"}, "schemas": ["public"]}},
}
H = "mylake.dfs.core.windows.net"


def config_with(account: dict, name: str = "mylake"):
    raw = copy.deepcopy(BASE)
    raw["storage"] = {"accounts": {name: account}}
    return parse_config(raw, {})


def settings(account: dict) -> dict:
    cfg = config_with(account)
    (only,) = cfg.storage
    return hadoop_settings(only)


def test_account_key():
    assert settings({"auth": "account_key", "key": "a2V5PT0="}) == {
        f"fs.azure.account.auth.type.{H}": "SharedKey",
        f"fs.azure.account.key.{H}": "a2V5PT0=",
    }


def test_sas_fixed_token_without_leading_question_mark():
    assert settings({"auth": "sas", "sas_token": "?sv=2024-01-01&sig=abc"}) == {
        f"fs.azure.account.auth.type.{H}": "SAS",
        f"fs.azure.sas.fixed.token.{H}": "sv=2024-01-01&sig=abc",
    }


def test_sas_provider_class():
    assert settings({"auth": "sas", "sas_provider": "com.example.MySasProvider"}) == {
        f"fs.azure.account.auth.type.{H}": "SAS",
        f"fs.azure.sas.token.provider.type.{H}": "com.example.MySasProvider",
    }


def test_service_principal_client_credentials():
    got = settings({"auth": "service_principal", "tenant_id": "t-1", "client_id": "c-1", "client_secret": "s3cret"})
    assert got == {
        f"fs.azure.account.auth.type.{H}": "OAuth",
        f"fs.azure.account.oauth.provider.type.{H}": "org.apache.hadoop.fs.azurebfs.oauth2.ClientCredsTokenProvider",
        f"fs.azure.account.oauth2.client.id.{H}": "c-1",
        f"fs.azure.account.oauth2.client.secret.{H}": "s3cret",
        f"fs.azure.account.oauth2.client.endpoint.{H}": "https://login.microsoftonline.com/t-1/oauth2/token",
    }


def test_service_principal_sovereign_cloud_authority():
    got = settings({"auth": "service_principal", "tenant_id": "t", "client_id": "c", "client_secret": "s",
                    "authority": "https://login.chinacloudapi.cn/"})
    assert got[f"fs.azure.account.oauth2.client.endpoint.{H}"] == "https://login.chinacloudapi.cn/t/oauth2/token"


def test_managed_identity_system_assigned_sets_only_the_provider():
    assert settings({"auth": "managed_identity"}) == {
        f"fs.azure.account.auth.type.{H}": "OAuth",
        f"fs.azure.account.oauth.provider.type.{H}": "org.apache.hadoop.fs.azurebfs.oauth2.MsiTokenProvider",
    }


def test_managed_identity_user_assigned():
    got = settings({"auth": "managed_identity", "client_id": "uami", "tenant_id": "t", "msi_endpoint": "http://127.0.0.1:40342/token"})
    assert got == {
        f"fs.azure.account.auth.type.{H}": "OAuth",
        f"fs.azure.account.oauth.provider.type.{H}": "org.apache.hadoop.fs.azurebfs.oauth2.MsiTokenProvider",
        f"fs.azure.account.oauth2.client.id.{H}": "uami",
        f"fs.azure.account.oauth2.msi.tenant.{H}": "t",
        f"fs.azure.account.oauth2.msi.endpoint.{H}": "http://127.0.0.1:40342/token",
    }


def test_workload_identity():
    got = settings({"auth": "workload_identity", "tenant_id": "t", "client_id": "c", "token_file": "/var/run/secrets/tok"})
    assert got == {
        f"fs.azure.account.auth.type.{H}": "OAuth",
        f"fs.azure.account.oauth.provider.type.{H}": "org.apache.hadoop.fs.azurebfs.oauth2.WorkloadIdentityTokenProvider",
        f"fs.azure.account.oauth2.msi.tenant.{H}": "t",
        f"fs.azure.account.oauth2.client.id.{H}": "c",
        f"fs.azure.account.oauth2.msi.authority.{H}": "https://login.microsoftonline.com/",
        f"fs.azure.account.oauth2.token.file.{H}": "/var/run/secrets/tok",
    }


def test_none_for_unity_catalog_sets_nothing():
    assert settings({"auth": "none"}) == {}


def test_emulator_names_the_blob_host():
    cfg = config_with({"auth": "emulator"}, name="devstoreaccount1")
    assert storage_settings(cfg.storage) == {"fs.azure.storage.emulator.account.name": "devstoreaccount1.blob.core.windows.net"}


def test_wasb_account_key_on_the_blob_endpoint():
    got = settings({"auth": "account_key", "key": "k==", "endpoint": "blob.core.windows.net"})
    assert got["fs.azure.account.key.mylake.blob.core.windows.net"] == "k=="


def test_two_accounts_merge_and_spark_prefix():
    raw = copy.deepcopy(BASE)
    raw["storage"] = {"accounts": {"one": {"auth": "account_key", "key": "k1"}, "two": {"auth": "managed_identity"}}}
    merged = storage_settings(parse_config(raw, {}).storage)
    assert merged["fs.azure.account.key.one.dfs.core.windows.net"] == "k1"
    assert merged["fs.azure.account.auth.type.two.dfs.core.windows.net"] == "OAuth"
    assert spark_hadoop_conf({"a.b": "v"}) == {"spark.hadoop.a.b": "v"}


def test_secrets_are_registered_for_redaction_and_not_in_repr():
    cfg = config_with({"auth": "service_principal", "tenant_id": "t", "client_id": "c", "client_secret": "very-secret"})
    assert "very-secret" in cfg.secrets()
    assert "very-secret" not in repr(cfg)


@pytest.mark.parametrize(
    ("account", "name", "path", "message"),
    [
        ({"auth": "kerberos"}, "mylake", "storage.accounts.mylake.auth", "expected one of account_key, sas, service_principal"),
        ({}, "mylake", "storage.accounts.mylake.auth", "is required"),
        ({"auth": "account_key"}, "mylake", "storage.accounts.mylake.key", "is required"),
        ({"auth": "service_principal", "tenant_id": "t", "client_id": "c"}, "mylake", "storage.accounts.mylake.client_secret", "is required"),
        ({"auth": "workload_identity", "client_id": "c"}, "mylake", "storage.accounts.mylake.tenant_id", "is required"),
        ({"auth": "account_key", "key": "k", "client_secret": "x"}, "mylake", "storage.accounts.mylake.client_secret",
         "not a setting of auth account_key (allowed: auth, endpoint, key)"),
        ({"auth": "sas"}, "mylake", "storage.accounts.mylake", "exactly one of sas_token"),
        ({"auth": "sas", "sas_token": "a", "sas_provider": "b"}, "mylake", "storage.accounts.mylake", "exactly one of sas_token"),
        ({"auth": "none"}, "My_Lake", "storage.accounts.My_Lake", "3 to 24 lower-case letters and digits"),
        ({"auth": "none", "endpoint": "https://x"}, "mylake", "storage.accounts.mylake.endpoint", "expected a host suffix"),
    ],
)
def test_config_errors_name_the_yaml_path(account, name, path, message):
    with pytest.raises(ConfigError) as info:
        config_with(account, name=name)
    assert info.value.path == path
    assert message in str(info.value)


def test_unknown_key_under_storage():
    raw = copy.deepcopy(BASE)
    raw["storage"] = {"account": {}}
    with pytest.raises(ConfigError, match=r"storage\.account: unknown key"):
        parse_config(raw, {})


def test_secret_reference_in_a_storage_field():
    raw = copy.deepcopy(BASE)
    raw["storage"] = {"accounts": {"mylake": {"auth": "account_key", "key": "${secret:lake/account-key}"}}}
    lookups = Lookups(read_file=lambda p: "", read_secret=lambda scope, key: {("lake", "account-key"): "S3CR3T=="}[(scope, key)])
    cfg = parse_config(raw, {}, lookups)
    assert hadoop_settings(cfg.storage[0])[f"fs.azure.account.key.{H}"] == "S3CR3T=="
    assert "S3CR3T==" in cfg.secrets()


def test_the_shipped_azurite_config():
    from pathlib import Path

    from lib.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "config" / "pipeline_azurite.yaml", env={})
    assert cfg.lake.root == "wasb://lakehouse@devstoreaccount1.blob.core.windows.net/lake"
    assert cfg.checkpoints_root == "wasb://lakehouse@devstoreaccount1.blob.core.windows.net/checkpoints"
    assert storage_settings(cfg.storage) == {"fs.azure.storage.emulator.account.name": "devstoreaccount1.blob.core.windows.net"}
    assert cfg.source("shop").cdc.slot_name == "lakehouse_shop_azurite"
