"""The lake's session settings (pure): INT64 microsecond timestamps, proleptic Gregorian calendar."""

from lib.lake.session_conf import lake_sql_conf


def test_timestamps_are_written_as_int64_microseconds_in_the_proleptic_calendar():
    conf = lake_sql_conf()
    assert conf == {
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    }


def test_each_call_returns_its_own_dict():
    first = lake_sql_conf()
    first["spark.sql.parquet.outputTimestampType"] = "INT96"
    assert lake_sql_conf()["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
