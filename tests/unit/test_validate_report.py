import json

from lib.validate.history import SCHEMA_DDL, history_rows
from lib.validate.model import Check, TableReport
from lib.validate.report import console_lines, html_path, render_html, report_document, write_reports

OK = TableReport("public", "a", "/lake/a", (Check("checksum", "reconciliation", "pass", "checksum equal in all 256 buckets"),), 5, 5)
BAD = TableReport(
    "public",
    "<b>",
    "/lake/b",
    (Check("checksum", "reconciliation", "fail", "checksum differs in 1 of 256 bucket(s) (0a); changed 1: id=<2>", "equal", "1 bucket(s) differ", {"changed_keys": ["id=<2>"]}),),
    5,
    5,
)


def test_console_lines():
    lines = console_lines([OK, BAD])
    assert lines[0] == "PASS public.a: 5 rows, checksum equal in all 256 buckets"
    assert lines[1] == "FAIL public.<b>: checksum differs in 1 of 256 bucket(s) (0a); changed 1: id=<2>"
    assert lines[2] == "validation: 2 table(s), 1 passed, 1 failed, 0 in flight"


def test_json_and_html_reports(tmp_path):
    doc = report_document({"run_id": "r1", "source": "shop"}, [OK, BAD])
    assert doc["summary"] == {"tables": 2, "passed": 1, "failed": 1, "in_flight": 0}
    target = tmp_path / "out" / "validation_shop.json"
    html_file = write_reports(doc, target)
    assert html_file == html_path(target) == tmp_path / "out" / "validation_shop.html"
    assert json.loads(target.read_text())["tables"][1]["checks"][0]["details"]["changed_keys"] == ["id=<2>"]
    page = render_html(doc)
    assert "<b>" not in page.split("<body>")[1].replace("<b>changed keys</b>", "")  # values are escaped
    assert "id=&lt;2&gt;" in page and "public.&lt;b&gt;" in page and "1 failed" in page


def test_history_rows_follow_the_schema():
    rows = history_rows("r1", "shop", "delta", None, None, [OK, BAD])  # type: ignore[arg-type]
    assert len(rows[0]) == len(SCHEMA_DDL.split(", "))
    assert rows[1][4] == "FAIL" and rows[1][8] == ["checksum"] and json.loads(rows[1][9])[0]["status"] == "fail"


def test_reports_to_a_uri_go_through_the_given_writer():
    written = {}
    doc = report_document({"run_id": "r", "source": "shop"}, [])
    html = write_reports(doc, "wasb://c@a.blob.core.windows.net/reports/v.json", lambda path, text: written.__setitem__(path, text))
    assert html == html_path("wasb://c@a.blob.core.windows.net/reports/v.json") == "wasb://c@a.blob.core.windows.net/reports/v.html"
    assert json.loads(written["wasb://c@a.blob.core.windows.net/reports/v.json"])["run_id"] == "r"
    assert written[html].startswith("<!doctype html>")
