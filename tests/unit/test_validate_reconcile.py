from lib.dialects.base import ColumnRead
from lib.validate import reconcile
from lib.validate.model import Check, TableReport


def test_differing_buckets_include_buckets_missing_on_one_side():
    src = {"00": (2, 10), "01": (1, 5), "02": (1, 7)}
    lake = {"00": (2, 10), "01": (1, 6), "03": (1, 1)}
    assert reconcile.differing_buckets(src, lake) == ["01", "02", "03"]
    assert reconcile.differing_buckets(src, dict(src)) == []
    assert reconcile.total_rows(src) == 4


def test_diff_rows_names_missing_extra_changed_and_duplicated_keys():
    src = [("1:1", 11), ("1:2", 22), ("1:3", 33)]
    lake = [("1:1", 11), ("1:2", 99), ("1:4", 44), ("1:4", 44)]
    diff = reconcile.diff_rows(["id"], src, lake)
    assert diff.missing == ["id=3"] and diff.extra == ["id=4"] and diff.changed == ["id=2"] and diff.duplicated == ["id=4"]


def test_diff_rows_without_key_compares_multisets():
    diff = reconcile.diff_rows([], [(None, 1), (None, 1), (None, 2)], [(None, 1), (None, 3), (None, 2)])
    assert (diff.missing_rows, diff.extra_rows) == (1, 1) and not diff.changed


def test_checks_say_why():
    assert reconcile.row_count_check(10, 10).status == "pass"
    assert reconcile.row_count_check(10, 8).message == "row count: lake 8, source 10 (2 missing)"
    assert reconcile.row_count_check(10, 11).message == "row count: lake 11, source 10 (1 extra)"
    key = reconcile.key_check(["id"], 0, 1, 2, ["id=5 x3"])
    assert key.failed and key.message == "primary key: 1 duplicated key(s) (2 extra rows), e.g. id=5 x3"
    diff = reconcile.KeyDiff(changed=["id=2"])
    checksum = reconcile.checksum_check(256, ["5f"], diff)
    assert checksum.failed and checksum.message == "checksum differs in 1 of 256 bucket(s) (5f); changed 1: id=2"
    assert checksum.details["changed_keys"] == ["id=2"] and checksum.details["buckets"] == ["5f"]
    skipped = reconcile.checksum_check(16, ["a"], None, "too many rows")
    assert skipped.details["drill_down"] == "too many rows"
    assert reconcile.checksum_check(16, [], None).status == "pass"


def test_schema_check():
    reads = [ColumnRead("a", '"a"', "int"), ColumnRead("b", '"b"', "decimal(10,2)")]
    assert reconcile.schema_check(reads, {"a": "int", "b": "decimal(10,2)"}).status == "pass"
    bad = reconcile.schema_check(reads, {"a": "bigint", "c": "string"})
    assert bad.failed and bad.message == "schema: missing column(s) b; unexpected column(s) c; a is bigint, expected int"


def test_in_flight_tolerates_count_and_checksum_only():
    count = reconcile.row_count_check(10, 8)
    assert reconcile.in_flight(count).status == "in_flight"
    key = reconcile.key_check(["id"], 1, 0, 0, [])
    assert reconcile.in_flight(key).failed


def test_verdicts_and_reasons():
    ok = Check("checksum", "reconciliation", "pass", "checksum equal in all 16 buckets")
    table = TableReport("s", "t", "/lake", (ok, Check("x", "expectation", "pass", "x")), 3, 3)
    assert table.verdict == "PASS" and table.reason == "3 rows, checksum equal in all 16 buckets, 1 expectation(s) met"
    flight = TableReport("s", "t", "/lake", (reconcile.in_flight(reconcile.row_count_check(3, 2)),), 3, 2, True)
    assert flight.verdict == "INFLIGHT" and flight.reason.startswith("in flight (CDC running): row count")
    failed = TableReport("s", "t", "/lake", (ok, reconcile.row_count_check(3, 2)), 3, 2)
    assert failed.verdict == "FAIL" and failed.reason == "row count: lake 2, source 3 (1 missing)"
    assert failed.as_dict()["checks"][1]["status"] == "fail"


def test_differing_keys_name_every_key_whose_rows_differ_for_the_repair():
    source = [("1:1", 10), ("1:2", 20), ("1:3", 30), ("1:5", 50)]
    lake = [("1:1", 10), ("1:2", 21), ("1:4", 40), ("1:5", 50), ("1:5", 50)]
    assert reconcile.diff_rows(["id"], source, lake).keys == ("1:2", "1:3", "1:4", "1:5")  # changed, missing, extra, duplicated
    assert reconcile.diff_rows(["id"], source, source).keys == ()


def test_the_checksum_keeps_every_differing_key_but_never_reports_them():
    diff = reconcile.diff_rows(["id"], [("1:2", 1)], [("1:2", 2)])
    check = reconcile.checksum_check(256, ["0a"], diff, None, ("1:2",))
    assert check.keys == ("1:2",) and "keys" not in check.as_dict() and check.details["changed_keys"] == ["id=2"]
    assert reconcile.in_flight(check).keys == ("1:2",)
    assert reconcile.checksum_check(256, ["0a"], None, "too many").keys is None
