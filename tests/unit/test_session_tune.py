"""lib.sessions.tune: optional settings set where the platform allows them, the refused ones reported."""

from __future__ import annotations

import logging

import pytest

from lib.sessions import MERGE_SETTINGS, tune


class _Conf:
    def __init__(self, refuse: set[str]) -> None:
        self.refuse, self.values = refuse, {}

    def set(self, key: str, value: str) -> None:
        if key in self.refuse:
            raise RuntimeError(f"[CONFIG_NOT_AVAILABLE] Configuration {key} is not available.")
        self.values[key] = value


class _Session:
    def __init__(self, refuse: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.conf = _Conf(set(refuse))


def test_every_setting_is_set_where_the_platform_takes_it() -> None:
    spark = _Session()
    assert tune(spark, MERGE_SETTINGS) == {}  # type: ignore[arg-type]
    assert spark.conf.values == MERGE_SETTINGS
    assert spark.conf.values["spark.sql.constraintPropagation.enabled"] == "false"


def test_a_refused_setting_is_reported_and_the_others_are_still_set(caplog: pytest.LogCaptureFixture) -> None:
    spark = _Session({"spark.sql.constraintPropagation.enabled"})
    with caplog.at_level(logging.INFO, logger="lib.sessions"):
        refused = tune(spark, MERGE_SETTINGS)  # type: ignore[arg-type]
    assert list(refused) == ["spark.sql.constraintPropagation.enabled"]
    assert "CONFIG_NOT_AVAILABLE" in refused["spark.sql.constraintPropagation.enabled"]
    assert spark.conf.values == {"spark.databricks.delta.merge.materializeSource": "none"}
    assert "session settings the platform refused (only speed depends on them): spark.sql.constraintPropagation.enabled" in caplog.text
