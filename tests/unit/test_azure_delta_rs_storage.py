"""delta-rs on Azure storage: the `storage:` auth modes as deltalake storage_options (one pure function),
lake URIs for deltalake, who may write a remote path, and the deletion-vector path rule (issue 26)."""

import copy

import pytest

from lib.config import parse_config
from lib.config.model import StorageAccount
from lib.lake import delta_rs_storage as D
from lib.lake.local_writer import unusable_reason

BASE = {
    "lake": {"root": "abfss://lake@mylake.dfs.core.windows.net/prod"},
    "sources": {"shop": {"type": "postgres", "connection": {"host": "h", "database": "d", "user": "u", "password": "pw-123"}, "schemas": ["public"]}},
}


def account(fields: dict, name: str = "mylake") -> StorageAccount:
    raw = copy.deepcopy(BASE)
    raw["storage"] = {"accounts": {name: fields}}
    (only,) = parse_config(raw, {}).storage
    return only


def test_account_key():
    assert D.storage_options(account({"auth": "account_key", "key": "a2V5PT0="})) == {"account_name": "mylake", "account_key": "a2V5PT0="}


def test_sas_fixed_token_without_leading_question_mark():
    assert D.storage_options(account({"auth": "sas", "sas_token": "?sv=2024-01-01&sig=abc"})) == {
        "account_name": "mylake", "sas_token": "sv=2024-01-01&sig=abc"}


def test_sas_provider_class_is_hadoops_only():
    with pytest.raises(D.DeltaRsUnreachable, match="SAS token provider class"):
        D.storage_options(account({"auth": "sas", "sas_provider": "com.example.Provider"}))


def test_service_principal():
    opts = D.storage_options(account({"auth": "service_principal", "tenant_id": "t-1", "client_id": "c-1", "client_secret": "s3cr3t"}))
    assert opts == {"account_name": "mylake", "client_id": "c-1", "client_secret": "s3cr3t", "tenant_id": "t-1",
                    "authority_host": "https://login.microsoftonline.com"}


def test_managed_identity_system_and_user_assigned():
    assert D.storage_options(account({"auth": "managed_identity"})) == {"account_name": "mylake"}
    opts = D.storage_options(account({"auth": "managed_identity", "client_id": "c-2", "msi_endpoint": "http://169.254.169.254/x"}))
    assert opts == {"account_name": "mylake", "client_id": "c-2", "msi_endpoint": "http://169.254.169.254/x"}


def test_workload_identity_defaults_to_the_aks_token_file():
    opts = D.storage_options(account({"auth": "workload_identity", "tenant_id": "t", "client_id": "c"}))
    assert opts == {"account_name": "mylake", "client_id": "c", "tenant_id": "t",
                    "federated_token_file": "/var/run/secrets/azure/tokens/azure-identity-token", "authority_host": "https://login.microsoftonline.com"}


def test_emulator_and_none():
    assert D.storage_options(account({"auth": "emulator"}, "devstoreaccount1")) == {"account_name": "devstoreaccount1", "use_emulator": "true"}
    with pytest.raises(D.DeltaRsUnreachable, match="Unity Catalog"):
        D.storage_options(account({"auth": "none"}))


def test_a_sovereign_cloud_endpoint_is_its_blob_endpoint():
    opts = D.storage_options(account({"auth": "account_key", "key": "k", "endpoint": "dfs.core.chinacloudapi.cn"}))
    assert opts["endpoint"] == "https://mylake.blob.core.chinacloudapi.cn"


def test_errors_never_hold_a_secret():
    sp = StorageAccount(name="mylake", auth="service_principal", tenant_id="t", client_id="c", client_secret=None)
    with pytest.raises(D.DeltaRsUnreachable) as info:
        D.storage_options(sp)
    assert "client_secret is missing" in str(info.value)
    assert "s3cr3t" not in repr(account({"auth": "service_principal", "tenant_id": "t", "client_id": "c", "client_secret": "s3cr3t"}))


@pytest.mark.parametrize(("uri", "expected"), [
    ("abfss://lake@mylake.dfs.core.windows.net/prod/shop/public/t", ("lake", "mylake", "dfs.core.windows.net", "prod/shop/public/t")),
    ("wasbs://c@acct.blob.core.windows.net/lake/Sales Dept/Order Items", ("c", "acct", "blob.core.windows.net", "lake/Sales Dept/Order Items")),
    ("wasb://c@devstoreaccount1.blob.core.windows.net/", ("c", "devstoreaccount1", "blob.core.windows.net", "")),
])
def test_azure_locations(uri, expected):
    loc = D.azure_location(uri)
    assert (loc.container, loc.account, loc.endpoint, loc.path) == expected
    assert D.object_store_uri(loc) == f"az://{expected[0]}/{expected[3]}".rstrip("/")


def test_not_azure():
    assert D.azure_location("s3://bucket/x") is None and D.azure_location("/lake") is None


def test_which_account_a_location_uses():
    dfs = StorageAccount(name="mylake", auth="managed_identity")
    other = StorageAccount(name="other", auth="managed_identity")
    assert D.find_account(D.azure_location("abfss://c@mylake.dfs.core.windows.net/x"), [other, dfs]) is dfs
    assert D.find_account(D.azure_location("wasbs://c@mylake.blob.core.windows.net/x"), [dfs]) is dfs  # the Blob twin
    assert D.find_account(D.azure_location("abfss://c@nobody.dfs.core.windows.net/x"), [dfs]) is None


def test_who_may_write_a_remote_path():
    mi = StorageAccount(name="mylake", auth="managed_identity")
    uc = StorageAccount(name="mylake", auth="none")
    root = "abfss://c@mylake.dfs.core.windows.net/lake"
    assert D.location_reason(root, [mi]) is None
    assert "Databricks" in D.location_reason(root, [mi], databricks=True)
    assert "no storage: account configured for mylake.dfs.core.windows.net" in D.location_reason(root, [])
    assert "Unity Catalog" in D.location_reason(root, [uc])
    assert "not on Azure storage" in D.location_reason("s3://b/lake", [mi])


def test_unusable_reason_with_a_remote_root():
    root = "abfss://c@mylake.dfs.core.windows.net/lake"
    assert unusable_reason("", [], root, lambda _: None) is None  # where Spark resolves plain paths does not matter
    assert unusable_reason("", ["deltalake"], root, lambda _: None) == "deltalake not installed"
    assert unusable_reason("", [], root, lambda _: "no account") == "no account"
    assert unusable_reason("file:///", [], root) == "the lake is remote (abfss:)"  # not asked: Spark's, as before
    assert unusable_reason("file:///", [], "/lake", lambda _: "never asked for a local root") is None


def test_target_of_local_and_registered_remote_paths():
    assert D.target("/lake/t") == ("/lake/t", None)
    assert D.target("file:///lake/t") == ("/lake/t", None)
    D.register_accounts([StorageAccount(name="devstoreaccount1", auth="emulator", endpoint="blob.core.windows.net")])
    try:
        assert D.target("wasb://c@devstoreaccount1.blob.core.windows.net/lake/t") == (
            "az://c/lake/t", {"account_name": "devstoreaccount1", "use_emulator": "true"})
        with pytest.raises(D.DeltaRsUnreachable, match="no storage: account"):
            D.target("abfss://c@elsewhere.dfs.core.windows.net/lake/t")
    finally:
        D.register_accounts(())


@pytest.mark.parametrize("location", [
    "wasb://c@devstoreaccount1.blob.core.windows.net/lake/shop/Sales Dept/Order Items",
    "abfss://c@a.dfs.core.windows.net/lake/shop/public/Größe",
    "abfss://c@a.dfs.core.windows.net/lake/shop/public/t~1",
    "abfss://c@a.dfs.core.windows.net/lake/shop/public/50%",
    "abfss://c@a.dfs.core.windows.net/lake/shop/x[1]/t",
])
def test_no_deletion_vectors_where_delta_rs_could_not_read_them(location):
    assert "delta-kernel-rs#918" in D.deletion_vectors_reason(location)


@pytest.mark.parametrize("location", [
    "abfss://c@a.dfs.core.windows.net/lake/shop/public/order_items",
    "wasb://c@devstoreaccount1.blob.core.windows.net/lake/shop/Sales-Dept/Order.Items$1",
    "/local/lake/shop/Sales Dept/Order Items",  # local paths read fine
    "file:///local/lake/shop/Sales Dept/Order Items",
])
def test_deletion_vectors_are_fine_elsewhere(location):
    assert D.deletion_vectors_reason(location) is None
