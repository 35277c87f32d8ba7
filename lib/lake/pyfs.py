"""The lake's files from this Python process (pyarrow.fs), for what Spark has no public API for:
deleting a path and writing a small file (lib/lake/storage.py). Spark Connect has no JVM to reach
Hadoop's FileSystem through, and classic Spark only through py4j internals, so these are done here:

- a plain or ``file://`` path: on this machine's disk, when Spark sees that disk at plain paths (a
  local session, or a Spark Connect server on this machine; lib.lake.local_writer.default_filesystem);
- ``abfs[s]://`` (ADLS Gen2, hierarchical namespace): pyarrow's Azure file system, authenticated from the
  Hadoop settings the session holds for the account (the ``storage:`` modes, lib/lake/azure_auth.py, or
  the same keys set by hand): account key, fixed SAS token, service principal, managed identity; workload
  identity and accounts without settings use Azure's default credential chain (the ``AZURE_*``
  environment, a managed identity);
- ``wasb[s]://`` (Blob storage, flat namespace, Hadoop's WASB layout: a folder is a 0-byte blob of its own
  name with ``hdi_isfolder`` metadata beside its contents, which pyarrow takes for a file): the Azure Blob
  SDK (azure-storage-blob), with the account key or SAS token WASB itself authenticates with, Azurite for
  the emulator mode;
- on a Databricks runtime, ``dbutils.fs`` (any path the workspace can reach: ``dbfs:/``, volumes,
  Unity Catalog locations).

Anything else fails naming the path and why, before anything is changed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pyspark.sql import SparkSession

from lib.errors import PipelineError
from lib.lake import azure_auth as A
from lib.lake.paths import is_uri

AZURE_SCHEMES = ("abfs", "abfss", "wasb", "wasbs")
# Azurite's development account and its published key: what hadoop-azure's WASB emulator mode uses.
EMULATOR_ACCOUNT_NAME = "devstoreaccount1"
EMULATOR_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
EMULATOR_AUTHORITY = "127.0.0.1:10000"
DEFAULT_AUTHORITY = "login.microsoftonline.com"


@dataclass(frozen=True)
class AzurePath:
    scheme: str
    container: str
    host: str  # <account>.<endpoint>, the suffix of the account's Hadoop settings
    key: str  # the path inside the container, without a leading "/"

    @property
    def account(self) -> str:
        return self.host.split(".", 1)[0]


def parse_azure(path: str) -> AzurePath | None:
    """``abfss://container@account.dfs.core.windows.net/dir/file`` as its parts (pure); None for other paths."""
    parts = urlsplit(path)
    if parts.scheme not in AZURE_SCHEMES or "@" not in parts.netloc:
        return None
    container, host = parts.netloc.split("@", 1)
    return AzurePath(parts.scheme, container, host, parts.path.strip("/"))


def azure_options(path: AzurePath, setting: Callable[[str], str | None]) -> dict[str, Any]:
    """pyarrow ``AzureFileSystem`` arguments for ``path``'s account from its Hadoop settings (pure):
    ``setting(key)`` looks one up (None when unset). Raises PipelineError for a mode pyarrow cannot use."""

    def at(key: str) -> str | None:
        return setting(f"{key}.{path.host}") or setting(key)

    if setting(A.EMULATOR_ACCOUNT) == path.host:  # WASB emulator mode: Azurite's fixed endpoint and key
        return {"account_name": EMULATOR_ACCOUNT_NAME, "account_key": EMULATOR_KEY, "blob_storage_authority": EMULATOR_AUTHORITY,
                "blob_storage_scheme": "http", "dfs_storage_authority": EMULATOR_AUTHORITY, "dfs_storage_scheme": "http"}
    suffix = path.host.split(".", 2)[2] if path.host.count(".") >= 2 else "core.windows.net"  # core.windows.net, or a sovereign cloud's
    out: dict[str, Any] = {"account_name": path.account}
    if suffix != "core.windows.net":
        out.update(blob_storage_authority=f".blob.{suffix}", dfs_storage_authority=f".dfs.{suffix}")
    auth = (at(A.AUTH_TYPE) or "").lower()
    key = at(A.ACCOUNT_KEY)
    if key and auth in ("", "sharedkey"):
        return {**out, "account_key": key}
    if auth == "sas":
        token = at(A.SAS_FIXED_TOKEN)
        if not token:
            raise PipelineError(f"{path.host}: a SAS token provider class ({A.SAS_PROVIDER}) cannot be used from Python: "
                                "set a fixed token (storage: sas_token), or let the job fail over to the cluster's own access")
        return {**out, "sas_token": token.lstrip("?")}
    if auth == "oauth":
        provider = at(A.TOKEN_PROVIDER) or ""
        if provider == A.CLIENT_CREDS_PROVIDER:
            endpoint = urlsplit(at(A.CLIENT_ENDPOINT) or "")
            tenant = endpoint.path.strip("/").split("/", 1)[0]
            if endpoint.hostname != DEFAULT_AUTHORITY or not tenant:
                raise PipelineError(f"{path.host}: a service principal outside {DEFAULT_AUTHORITY} cannot be used from Python (pyarrow)")
            return {**out, "client_id": at(A.CLIENT_ID), "tenant_id": tenant, "client_secret": at(A.CLIENT_SECRET)}
        if provider == A.MSI_PROVIDER and at(A.CLIENT_ID):
            return {**out, "client_id": at(A.CLIENT_ID)}  # a user-assigned managed identity
    return out  # Azure's default credential chain: environment, workload identity, managed identity


def session_setting(spark: SparkSession) -> Callable[[str], str | None]:
    """A look-up of a Hadoop setting in ``spark``: set into the session, or at build time as ``spark.hadoop.*``."""

    def get(key: str) -> str | None:
        for name in (key, f"spark.hadoop.{key}"):
            try:
                value = spark.conf.get(name, None)
            except Exception:  # noqa: BLE001 - a session that refuses to show a setting: not set, as far as we know
                value = None
            if value:
                return str(value)
        return None

    return get


def _dbutils(spark: SparkSession) -> Any | None:
    """Databricks' ``dbutils`` on a Databricks runtime, else None."""
    if "DATABRICKS_RUNTIME_VERSION" not in os.environ:
        return None
    from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]  # Databricks runtimes only

    return DBUtils(spark)


def _azure(spark: SparkSession, path: AzurePath) -> Any:
    import pyarrow.fs as pafs

    return pafs.AzureFileSystem(**azure_options(path, session_setting(spark)))


def blob_endpoint(options: dict[str, Any]) -> str:
    """The Blob service URL of pyarrow-style ``options`` (pure): Azurite's path-style URL, else the account's host."""
    account, authority = options["account_name"], options.get("blob_storage_authority", ".blob.core.windows.net")
    if authority.startswith("."):
        return f"https://{account}{authority}"
    return f"{options.get('blob_storage_scheme', 'https')}://{authority}/{account}"


def _container(spark: SparkSession, path: AzurePath) -> Any:
    """An azure-storage-blob client of ``path``'s container (WASB authenticates with a key or a SAS token only)."""
    try:
        from azure.storage.blob import ContainerClient
    except ImportError:
        raise PipelineError(f"{path.scheme}:// paths are changed from Python with azure-storage-blob, which is not installed") from None
    options = azure_options(path, session_setting(spark))
    if options.get("account_key"):
        credential: Any = {"account_name": options["account_name"], "account_key": options["account_key"]}
    elif options.get("sas_token"):
        credential = options["sas_token"]
    else:
        raise PipelineError(f"{path.host}: no account key or SAS token in this session's settings for {path.scheme}://")
    return ContainerClient(blob_endpoint(options), path.container, credential=credential)


def _delete_blobs(container: Any, key: str) -> bool:
    """Delete the blobs under ``key/`` and the blob ``key`` itself (a file, or WASB's folder marker)."""
    from azure.core.exceptions import ResourceNotFoundError

    names = [b.name for b in container.list_blobs(name_starts_with=f"{key}/")]
    for name in sorted(names, key=len, reverse=True):  # folder markers after what they hold
        container.delete_blob(name)
    try:
        container.delete_blob(key)
    except ResourceNotFoundError:
        return bool(names)
    return True


def _local(spark: SparkSession, path: str, what: str) -> str:
    """``path`` on this machine's disk; raises when Spark does not see that disk at plain paths."""
    from lib.lake.local_writer import default_filesystem, local_path

    where = default_filesystem(spark)
    if not where.startswith("file:"):
        raise PipelineError(f"cannot {what} {path} from this process: Spark resolves it on {where} (a path this machine does not hold); "
                            "use a lake on Azure storage (abfss://, wasbs://) or run the job where the lake's disk is")
    return local_path(path)


def delete(spark: SparkSession, path: str) -> bool:
    """Delete ``path`` (a file, or a directory and everything under it); False when it did not exist."""
    dbutils = _dbutils(spark)
    if dbutils is not None:
        try:
            dbutils.fs.ls(path)
        except Exception:  # noqa: BLE001 - dbutils says a missing path by raising
            return False
        return bool(dbutils.fs.rm(path, True))
    azure = parse_azure(path)
    if azure is not None:
        if not azure.key:
            raise PipelineError(f"refusing to delete the whole container of {path}")
        if azure.scheme.startswith("wasb"):
            return _delete_blobs(_container(spark, azure), azure.key)
        return _delete_azure(_azure(spark, azure), f"{azure.container}/{azure.key}")
    if is_uri(path) and not path.startswith("file:"):
        raise PipelineError(f"cannot delete {path} from this process: no Python file system for {path.split('://', 1)[0]}://")
    local = _local(spark, path, "delete")
    if os.path.isdir(local) and not os.path.islink(local):
        shutil.rmtree(local)
        return True
    if os.path.lexists(local):
        os.remove(local)
        return True
    return False


def _delete_azure(fs: Any, key: str) -> bool:
    """Delete a directory (recursively) or a file of an ADLS Gen2 account through pyarrow."""
    import pyarrow.fs as pafs

    info = fs.get_file_info(key)
    if info.type == pafs.FileType.NotFound:
        return False
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(key)
    else:
        fs.delete_file(key)
    return True


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write (overwrite) a small UTF-8 file at ``path``."""
    dbutils = _dbutils(spark)
    if dbutils is not None:
        dbutils.fs.put(path, text, True)
        return
    azure = parse_azure(path)
    if azure is not None:
        if azure.scheme.startswith("wasb"):
            _container(spark, azure).upload_blob(azure.key, text.encode("utf-8"), overwrite=True)
            return
        with _azure(spark, azure).open_output_stream(f"{azure.container}/{azure.key}") as out:
            out.write(text.encode("utf-8"))
        return
    if is_uri(path) and not path.startswith("file:"):
        raise PipelineError(f"cannot write {path} from this process: no Python file system for {path.split('://', 1)[0]}://")
    local = _local(spark, path, "write")
    os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
    with open(local, "w", encoding="utf-8") as out:
        out.write(text)
