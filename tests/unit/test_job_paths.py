"""Where the bulk load writes the connector config by default: the checkout's config/, or, with the project
imported from the wheel (spark-submit --py-files, a Databricks wheel task), the current directory's config/."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "jobs"))

import _cli  # noqa: E402


def test_from_the_checkout_the_checkouts_config_dir() -> None:
    assert _cli.default_connector_config("shop") == ROOT / "config" / "debezium_shop.json"


def test_from_the_wheel_the_current_directory(tmp_path: Path) -> None:
    wheel = tmp_path / "lakehouse_ingest-0.1.0-py3-none-any.whl"  # --py-files: jobs/_cli.py inside the zip
    wheel.write_bytes(b"PK")
    assert _cli.default_connector_config("shop", wheel) == Path("config") / "debezium_shop.json"
    site = tmp_path / "site-packages"  # installed: another package may ship a top-level config/ there
    (site / "config").mkdir(parents=True)
    assert _cli.default_connector_config("shop", site) == Path("config") / "debezium_shop.json"
    assert not _cli.default_connector_config("shop", site).is_absolute()
