"""Entry points of the installed wheel (``[project.scripts]`` in pyproject.toml): ``lakehouse-bulk-load``
and the others run the same ``main`` as ``python jobs/<job>.py``, with the same flags and exit codes."""

from __future__ import annotations

import importlib

import _cli


def _run(job: str) -> None:
    _cli.run(importlib.import_module(f"jobs.{job}").main)


def bulk_load() -> None:
    _run("bulk_load")


def cdc_stream() -> None:
    _run("cdc_stream")


def validate() -> None:
    _run("validate")


def status() -> None:
    _run("status")


def cdc_connector() -> None:
    _run("cdc_connector")
