"""What a job's session builder sets under spark-submit (jobs/_session.py ``submit_conf``): spark-submit's own
settings stand, and the local session's driver address, memory, UI and shuffle width never replace a cluster's."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "jobs"))

import _session  # noqa: E402


def test_settings_spark_submit_was_given_stay_as_given() -> None:
    given = {"spark.driver.host": "10.0.0.5", "spark.sql.session.timeZone": "UTC", "spark.executor.extraJavaOptions": "-Dx=1"}
    conf = _session.submit_conf({**_session.LOCAL_CONF, "spark.hadoop.fs.azure.account.auth.type": "SAS"}, given)
    assert not set(conf) & set(given)
    assert conf["spark.hadoop.fs.azure.account.auth.type"] == "SAS"  # the job's storage settings are still set
    assert conf["spark.sql.extensions"] == _session.LOCAL_CONF["spark.sql.extensions"]  # Delta, when spark-submit lacks it


def test_the_local_sessions_address_memory_ui_and_shuffle_width_are_never_set() -> None:
    conf = _session.submit_conf(dict(_session.LOCAL_CONF), {})
    for key in ("spark.driver.host", "spark.driver.bindAddress", "spark.driver.memory", "spark.ui.enabled", "spark.sql.shuffle.partitions",
                "spark.driver.extraJavaOptions"):
        assert key in _session.LOCAL_CONF and key not in conf, key
    assert conf["spark.executor.extraJavaOptions"] == "-Duser.timezone=UTC"  # executors read JDBC dates in UTC
