"""Create blob containers in Azurite's dev account (devstoreaccount1) with the Azure SDK; existing ones are kept.

    .venv/bin/python scripts/azurite_containers.py [--port 10000] [--delete] CONTAINER [CONTAINER ...]

WASB in storage-emulator mode cannot create containers (it connects without account-key credentials),
so the stack (scripts/stack/azurite.sh) and the tests create them beforehand.
"""

from __future__ import annotations

import argparse
import contextlib

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key (public, the same in every Azurite and storage emulator).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")


def client(port: int) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(connection_string(port))


def ensure_containers(port: int, names: list[str]) -> list[str]:
    """Create the missing containers; returns the names created."""
    service = client(port)
    created = []
    for name in names:
        try:
            service.create_container(name)
            created.append(name)
        except ResourceExistsError:
            pass
    return created


def delete_containers(port: int, names: list[str]) -> None:
    service = client(port)
    for name in names:
        with contextlib.suppress(ResourceNotFoundError):
            service.delete_container(name)


def main() -> None:
    p = argparse.ArgumentParser(description="Create (or delete) blob containers in Azurite's devstoreaccount1.")
    p.add_argument("--port", type=int, default=10000, help="Azurite's Blob port (default 10000)")
    p.add_argument("--delete", action="store_true", help="delete the containers instead")
    p.add_argument("containers", nargs="+")
    args = p.parse_args()
    if args.delete:
        delete_containers(args.port, args.containers)
        print(f"[stack] azurite: containers deleted: {', '.join(args.containers)}")
        return
    created = ensure_containers(args.port, args.containers)
    print(f"[stack] azurite: containers {', '.join(args.containers)} ready ({len(created)} created)")


if __name__ == "__main__":
    main()
