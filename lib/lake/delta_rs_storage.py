"""delta-rs (deltalake) on Azure Blob storage / ADLS Gen2: where a lake URI is for deltalake, and the
``storage:`` accounts' auth as deltalake ``storage_options`` (the keys of the ``object_store`` crate's
``AzureConfigKey``: https://docs.rs/object_store/latest/object_store/azure/enum.AzureConfigKey.html).

- :func:`storage_options` is the ONE translation of an account's auth mode (pure, unit-tested per mode in
  tests/unit/test_azure_delta_rs_storage.py), beside lib/lake/azure_auth.py's Hadoop one for Spark.
- :func:`azure_location` / :func:`object_store_uri`: ``abfss://<container>@<account>.dfs.core.windows.net/<path>``
  and ``wasbs://<container>@<account>.blob.core.windows.net/<path>`` (Hadoop's URIs; WASB's ``wasb://``
  too) are ``az://<container>/<path>`` with ``account_name`` for deltalake: object_store speaks the Blob
  API to both kinds of account, so one form serves ADLS Gen2, Blob storage and Azurite.
- The accounts of the running job are registered once (:func:`register_accounts`, from the job's session
  set-up, jobs/_cli.py); :func:`target` gives every delta-rs writer its URI and options, :func:`remote_reason`
  says why delta-rs cannot reach a remote path (then Spark writes it, as before).

Atomic commits: deltalake commits a version on Azure with a conditional put (``If-None-Match: *``, object_store's
``PutMode::Create``): two writers of one version cannot both win, and no locking provider is needed (the
deltalake docs: "done by default when writing to all supported object stores except AWS S3",
https://delta-io.github.io/delta-rs/usage/writing/writing-to-s3-with-locking-provider). Spark's Delta commits on
Azure are a rename that must not overwrite (its Azure log store); docs/azure.md says what that means when both
write one table.

Never logged or printed: the options hold account keys, SAS tokens and client secrets. Errors name the
account and the auth mode only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from lib.config.model import StorageAccount
from lib.lake.paths import on_databricks, scheme

AZURE_SCHEMES = frozenset({"abfss", "abfs", "wasbs", "wasb"})
DEFAULT_ENDPOINTS = frozenset({"dfs.core.windows.net", "blob.core.windows.net"})
_AZURE_URI = re.compile(r"^(?P<scheme>abfss?|wasbs?)://(?P<container>[^@/]+)@(?P<account>[^./]+)\.(?P<endpoint>[^/]+?)(?:/(?P<path>.*))?$",
                        re.IGNORECASE)


class DeltaRsUnreachable(RuntimeError):
    """delta-rs cannot reach this remote path from this process (no account settings, an auth mode it lacks)."""


@dataclass(frozen=True)
class AzureLocation:
    """A Hadoop Azure URI's parts: ``<scheme>://<container>@<account>.<endpoint>/<path>``."""

    container: str
    account: str
    endpoint: str
    path: str  # inside the container, no leading or trailing slash

    @property
    def host(self) -> str:
        return f"{self.account}.{self.endpoint}"


def azure_location(uri: str) -> AzureLocation | None:
    """The parts of an ``abfs[s]://`` / ``wasb[s]://`` URI (pure); None for anything else."""
    m = _AZURE_URI.match(uri)
    if m is None:
        return None
    return AzureLocation(m["container"], m["account"], m["endpoint"].lower(), (m["path"] or "").strip("/"))


def object_store_uri(location: AzureLocation) -> str:
    """The URI deltalake opens for ``location`` (pure): ``az://<container>/<path>`` (the account is an option)."""
    return f"az://{location.container}/{location.path}".rstrip("/")


def storage_options(account: StorageAccount) -> dict[str, str]:
    """The deltalake ``storage_options`` that authenticate one account, per ``storage:`` auth mode (pure).

    Raises :class:`DeltaRsUnreachable` for what delta-rs cannot do: ``none`` (Unity Catalog vends the
    credentials to Spark only) and ``sas`` with ``sas_provider`` (a Hadoop Java class)."""
    out = {"account_name": account.name}
    if account.endpoint not in DEFAULT_ENDPOINTS and account.auth != "emulator":  # a sovereign cloud: its Blob endpoint
        blob = re.sub(r"^dfs\.", "blob.", account.endpoint)
        out["endpoint"] = f"https://{account.name}.{blob}"
    auth = account.auth
    if auth == "emulator":  # Azurite / the storage emulator: http://127.0.0.1:10000/<account>, its well-known key
        return {**out, "use_emulator": "true"}
    if auth == "account_key":
        return {**out, "account_key": _need(account.key, account, "key")}
    if auth == "sas":
        if account.sas_provider:
            raise DeltaRsUnreachable(f"storage account {account.name}: a SAS token provider class ({account.sas_provider}) is Hadoop's, "
                                     "delta-rs needs a fixed sas_token")
        return {**out, "sas_token": _need(account.sas_token, account, "sas_token").lstrip("?")}
    if auth == "service_principal":
        return {**out, "client_id": _need(account.client_id, account, "client_id"),
                "client_secret": _need(account.client_secret, account, "client_secret"),
                "tenant_id": _need(account.tenant_id, account, "tenant_id"), "authority_host": account.authority.rstrip("/")}
    if auth == "managed_identity":  # object_store asks the instance metadata service when no other credential is set
        optional = (("client_id", account.client_id), ("msi_endpoint", account.msi_endpoint))
        return {**out, **{key: value for key, value in optional if value}}
    if auth == "workload_identity":
        return {**out, "client_id": _need(account.client_id, account, "client_id"), "tenant_id": _need(account.tenant_id, account, "tenant_id"),
                "federated_token_file": account.token_file or "/var/run/secrets/azure/tokens/azure-identity-token",
                "authority_host": account.authority.rstrip("/")}
    if auth == "none":
        raise DeltaRsUnreachable(f"storage account {account.name}: auth none (Unity Catalog authorizes Spark only)")
    raise DeltaRsUnreachable(f"storage account {account.name}: unknown auth mode {auth!r}")


def find_account(location: AzureLocation, accounts: Iterable[StorageAccount]) -> StorageAccount | None:
    """The configured account of ``location`` (pure): the same host, else the same account name on the
    other Azure endpoint of one cloud (a ``wasbs://`` URI of an account configured for ``dfs``)."""
    accounts = list(accounts)
    for account in accounts:
        if f"{account.name}.{account.endpoint}".lower() == location.host:
            return account
    twin = {"dfs": "blob", "blob": "dfs"}
    head, _, rest = location.endpoint.partition(".")
    for account in accounts:
        if account.name.lower() == location.account.lower() and account.endpoint == f"{twin.get(head, head)}.{rest}":
            return account
    return None


def location_reason(path: str, accounts: Iterable[StorageAccount], databricks: bool = False) -> str | None:
    """Why delta-rs cannot write the remote ``path`` with these accounts (pure); None when it can.
    Local paths are not this function's (lib/lake/local_writer.py)."""
    if databricks:  # Unity Catalog (external locations, credential vending) and DBFS are Spark's there
        return "on Databricks the lake is written by Spark (Unity Catalog authorizes Spark)"
    location = azure_location(path)
    if location is None:
        return f"the lake is remote ({scheme(path)}:) and not on Azure storage"
    account = find_account(location, accounts)
    if account is None:
        return f"no storage: account configured for {location.host} (delta-rs has no Hadoop settings)"
    try:
        storage_options(account)
    except DeltaRsUnreachable as exc:
        return str(exc)
    return None


# The `storage:` accounts of this process's job (jobs/_cli.py registers them with the session's settings).
_accounts: tuple[StorageAccount, ...] = ()
_lock = threading.Lock()


def register_accounts(accounts: Iterable[StorageAccount]) -> None:
    """Make ``accounts`` the ones delta-rs uses in this process (a job's ``storage:`` section)."""
    global _accounts
    with _lock:
        _accounts = tuple(accounts)


def registered_accounts() -> tuple[StorageAccount, ...]:
    with _lock:
        return _accounts


def is_remote(path: str) -> bool:
    """A URI other than ``file:`` (pure)."""
    return scheme(path) not in (None, "file")


def remote_reason(path: str) -> str | None:
    """:func:`location_reason` for this process (its registered accounts, whether it runs on Databricks)."""
    return location_reason(path, registered_accounts(), on_databricks())


def target(path: str) -> tuple[str, dict[str, str] | None]:
    """What deltalake opens for the lake ``path``: a local path and no options, or the object store URI and
    the account's options. Raises :class:`DeltaRsUnreachable` for a remote path delta-rs cannot reach here."""
    if not is_remote(path):
        return (path[len("file://"):] if path.startswith("file://") else path), None
    reason = remote_reason(path)
    if reason is not None:
        raise DeltaRsUnreachable(reason)
    location = azure_location(path)
    assert location is not None  # remote_reason said so
    account = find_account(location, registered_accounts())
    assert account is not None
    return object_store_uri(location), storage_options(account)


def _need(value: str | None, account: StorageAccount, field: str) -> str:
    if not value:  # the config loader rejects a missing required field first; this guards direct callers
        raise DeltaRsUnreachable(f"storage account {account.name}: {field} is missing")
    return value


# Characters a path keeps as they are both in a URL and in an object_store ``Path``: any other one is
# percent-encoded by one of them, and delta-rs then looks for a deletion vector file under a
# doubly encoded name (:func:`deletion_vectors_reason`).
_URL_SAFE = re.compile(r"[^A-Za-z0-9\-._!$&'()*+,;=:@/]")


def deletion_vectors_reason(location: str) -> str | None:
    """Why the table at ``location`` must not have deletion vectors (pure); None when they are fine.

    deltalake 1.6 (delta-kernel-rs' default engine, ``ObjectStoreStorageHandler::read_files``) reads a
    deletion vector file on an object store at ``Path::from(url.path())``: the table URL's path is already
    percent-encoded and ``Path::from`` encodes it again, so ``Sales Dept`` is looked for as
    ``Sales%2520Dept`` (File not found) and the table cannot be read by delta-rs, DuckDB's or Polars'
    Delta readers while one of its files has a deletion vector (upstream: delta-io/delta-kernel-rs#918,
    fixed by #3204, not yet in a deltalake release). Spark writes them correctly (storage type ``u``: a
    path relative to the table, no encoding involved) and local paths read fine (``file:`` URLs are
    decoded). So a table on an object store whose path has a character a URL or object_store encodes
    is written without deletion vectors."""
    if not is_remote(location):
        return None
    rest = location.split("://", 1)[1] if "://" in location else location.split(":", 1)[1]
    path = rest.split("/", 1)[1] if "/" in rest else ""
    odd = sorted(set(_URL_SAFE.findall(path)))
    if not odd:
        return None
    shown = ", ".join(repr(c) for c in odd)
    return (f"its path has {shown}: on an object store delta-rs readers (deltalake 1.6) cannot read its deletion vectors "
            "(delta-io/delta-kernel-rs#918), so it is written without them")
