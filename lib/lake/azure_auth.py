"""Azure storage auth modes turned into Hadoop ABFS / WASB settings (pure: no Spark, no network).

The keys are those of hadoop-azure 3.4.1 (the Hadoop inside pyspark 4.0.1), read from its sources:
``org.apache.hadoop.fs.azurebfs.constants.ConfigurationKeys`` and ``AbfsConfiguration.getTokenProvider`` /
``getSASTokenProvider`` (ABFS), ``org.apache.hadoop.fs.azure.AzureNativeFileSystemStore`` (WASB emulator).
Every key is account-specific: ``<key>.<account>.<endpoint>`` (``AbfsConfiguration.accountConf``), so several
accounts with different auth modes live side by side in one session. docs/azure.md lists them per mode.
"""

from __future__ import annotations

from lib.config.model import StorageAccount

AUTH_TYPE = "fs.azure.account.auth.type"
ACCOUNT_KEY = "fs.azure.account.key"
TOKEN_PROVIDER = "fs.azure.account.oauth.provider.type"
CLIENT_ID = "fs.azure.account.oauth2.client.id"
CLIENT_SECRET = "fs.azure.account.oauth2.client.secret"
CLIENT_ENDPOINT = "fs.azure.account.oauth2.client.endpoint"
MSI_TENANT = "fs.azure.account.oauth2.msi.tenant"
MSI_ENDPOINT = "fs.azure.account.oauth2.msi.endpoint"
MSI_AUTHORITY = "fs.azure.account.oauth2.msi.authority"
TOKEN_FILE = "fs.azure.account.oauth2.token.file"
SAS_FIXED_TOKEN = "fs.azure.sas.fixed.token"
SAS_PROVIDER = "fs.azure.sas.token.provider.type"
EMULATOR_ACCOUNT = "fs.azure.storage.emulator.account.name"

_OAUTH2 = "org.apache.hadoop.fs.azurebfs.oauth2"
CLIENT_CREDS_PROVIDER = f"{_OAUTH2}.ClientCredsTokenProvider"
MSI_PROVIDER = f"{_OAUTH2}.MsiTokenProvider"
WORKLOAD_IDENTITY_PROVIDER = f"{_OAUTH2}.WorkloadIdentityTokenProvider"


def account_host(account: StorageAccount) -> str:
    """``<account>.<endpoint>``, the suffix of every account-specific key (and the host in the URI)."""
    return f"{account.name}.{account.endpoint}"


def hadoop_settings(account: StorageAccount) -> dict[str, str]:
    """The Hadoop settings (without the ``spark.hadoop.`` prefix) that authenticate one storage account."""
    host = account_host(account)

    def at(key: str) -> str:
        return f"{key}.{host}"

    auth = account.auth
    if auth == "none":  # Unity Catalog external locations / storage credentials: Databricks authenticates
        return {}
    if auth == "emulator":  # WASB against Azurite / the storage emulator (fixed http://127.0.0.1:10000/devstoreaccount1)
        return {EMULATOR_ACCOUNT: host}
    if auth == "account_key":
        return {at(AUTH_TYPE): "SharedKey", at(ACCOUNT_KEY): _need(account.key)}
    if auth == "sas":
        out = {at(AUTH_TYPE): "SAS"}
        if account.sas_provider:
            out[at(SAS_PROVIDER)] = account.sas_provider
        else:
            out[at(SAS_FIXED_TOKEN)] = _need(account.sas_token).lstrip("?")
        return out
    if auth == "service_principal":
        authority = account.authority.rstrip("/")
        return {
            at(AUTH_TYPE): "OAuth",
            at(TOKEN_PROVIDER): CLIENT_CREDS_PROVIDER,
            at(CLIENT_ID): _need(account.client_id),
            at(CLIENT_SECRET): _need(account.client_secret),
            at(CLIENT_ENDPOINT): f"{authority}/{_need(account.tenant_id)}/oauth2/token",
        }
    if auth == "managed_identity":
        out = {at(AUTH_TYPE): "OAuth", at(TOKEN_PROVIDER): MSI_PROVIDER}
        optional = ((CLIENT_ID, account.client_id), (MSI_TENANT, account.tenant_id), (MSI_ENDPOINT, account.msi_endpoint))
        out.update({at(key): value for key, value in optional if value})
        return out
    if auth == "workload_identity":
        out = {
            at(AUTH_TYPE): "OAuth",
            at(TOKEN_PROVIDER): WORKLOAD_IDENTITY_PROVIDER,
            at(MSI_TENANT): _need(account.tenant_id),
            at(CLIENT_ID): _need(account.client_id),
            at(MSI_AUTHORITY): account.authority.rstrip("/") + "/",
        }
        if account.token_file:
            out[at(TOKEN_FILE)] = account.token_file
        return out
    raise ValueError(f"unknown auth mode {auth!r}")


def storage_settings(accounts: tuple[StorageAccount, ...]) -> dict[str, str]:
    """The settings of every configured account, merged (keys are account-specific, so they never clash)."""
    out: dict[str, str] = {}
    for account in accounts:
        out.update(hadoop_settings(account))
    return out


def spark_hadoop_conf(settings: dict[str, str]) -> dict[str, str]:
    """The same settings as Spark conf entries for session build time (``spark.hadoop.<key>``)."""
    return {f"spark.hadoop.{key}": value for key, value in settings.items()}


def _need(value: str | None) -> str:
    if not value:  # the loader rejects a missing required field first; this guards direct callers
        raise ValueError("a required storage setting is missing")
    return value
