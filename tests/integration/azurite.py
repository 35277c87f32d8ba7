"""The local Azurite (Blob service of `make up`) as the integration tests use it: a fresh container per scenario,
and lake tables read from it by delta-rs's DataFusion reader (no Spark, no Hadoop), compared with the source."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder

from .conftest import ROOT
from .lake_readers import arrow_rows, assert_same_rows, source_table_rows

sys.path.insert(0, str(ROOT / "scripts"))
import azurite_containers

PORT = int(os.environ.get("AZURITE_PORT", "10000"))
ACCOUNT_HOST = "devstoreaccount1.blob.core.windows.net"  # wasb://<container>@<this>/<path>: WASB's emulator mode
EMULATOR = {"account_name": "devstoreaccount1", "use_emulator": "true"}  # deltalake's (object_store's) Azurite settings


def blobs(container: str) -> Any:
    """The Azure SDK's client of ``container`` on the local Azurite."""
    return azurite_containers.client(PORT).get_container_client(container)


@contextmanager
def fresh_container(prefix: str) -> Iterator[str]:
    """A new, empty container named ``<prefix>-<random>``, deleted afterwards; fails the test, saying what to
    start, when Azurite does not answer."""
    if PORT != 10000:
        pytest.fail(f"AZURITE_PORT={PORT}: WASB's storage-emulator mode always connects to 127.0.0.1:10000 (docs/azure.md)")
    container = f"{prefix}-{uuid.uuid4().hex[:10]}"
    try:
        azurite_containers.ensure_containers(PORT, [container])
    except Exception as exc:  # noqa: BLE001 - say what to start
        pytest.fail(f"Azurite does not answer on 127.0.0.1:{PORT} (`make up` starts it): {exc}")
    try:
        yield container
    finally:
        azurite_containers.delete_containers(PORT, [container])


def delta_rs_table(container: str, path: str) -> pa.Table:
    """The table at ``path`` in ``container`` read by delta-rs's DataFusion reader (deletion vectors applied)
    straight from Azurite: ``wasb://<container>@<account host>/<path>`` is ``az://<container>/<path>`` there."""
    table = DeltaTable(f"az://{container}/{path}", storage_options=EMULATOR)
    return pa.table(QueryBuilder().register("t", table).execute("SELECT * FROM t").read_all())


def assert_equal_by_delta_rs(src: Any, container: str, table: str, key: str, lake: str = "lake") -> int:
    """The lake table (under ``<lake>/<source>/<schema>/``) read by delta-rs from Azurite equals the source,
    value by value; returns its row count."""
    columns, expected = source_table_rows(src, table)
    actual = arrow_rows(delta_rs_table(container, f"{lake}/{src.name}/{src.schema}/{table}"), columns)
    assert_same_rows(expected, actual, columns, key, f"{table}: source vs delta-rs reading Azurite")
    return len(actual)
