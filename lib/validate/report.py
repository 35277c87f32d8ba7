"""The validation report: console lines, the JSON document and its HTML rendering (pure, plus writing)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lib.validate.model import TableReport

P = TypeVar("P", str, Path)


def console_lines(tables: Sequence[TableReport]) -> list[str]:
    """``PASS schema.table: why`` per table, then a summary line."""
    lines = [f"{t.verdict} {t.name}: {t.reason}" for t in tables]
    counts = summary(tables)
    lines.append(f"validation: {counts['tables']} table(s), {counts['passed']} passed, {counts['failed']} failed, {counts['in_flight']} in flight")
    return lines


def summary(tables: Sequence[TableReport]) -> dict[str, int]:
    verdicts = [t.verdict for t in tables]
    return {"tables": len(verdicts), "passed": verdicts.count("PASS"), "failed": verdicts.count("FAIL"), "in_flight": verdicts.count("INFLIGHT")}


def report_document(run: dict[str, Any], tables: Sequence[TableReport]) -> dict[str, Any]:
    """The JSON report: the run's facts (id, source, times, lake), the summary and every table."""
    return {**run, "summary": summary(tables), "tables": [t.as_dict() for t in tables]}


def html_path(json_path: P) -> P:
    """The HTML report beside the JSON one: ``x.json`` -> ``x.html`` (a local Path or a URI string)."""
    if isinstance(json_path, Path):
        return json_path.with_suffix(".html")
    base = json_path[: -len(".json")] if json_path.endswith(".json") else json_path
    return f"{base}.html"  # type: ignore[return-value]


def _write_local(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def write_reports(document: dict[str, Any], json_path: P, write: Callable[[str, str], None] = _write_local) -> P:
    """Write the JSON report and the HTML report beside it; returns the HTML path. ``write(path, text)``
    writes one file: local by default, through Hadoop's FileSystem for a URI (lib.lake.storage.write_text)."""
    write(str(json_path), json.dumps(document, indent=2, default=str, ensure_ascii=False) + "\n")
    target = html_path(json_path)
    write(str(target), render_html(document))
    return target


_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328;max-width:1200px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px} .meta{color:#57606a;margin-bottom:14px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px} th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} code{font:12px ui-monospace,Menlo,monospace}
.PASS,.pass{color:#1a7f37;font-weight:600} .FAIL,.fail{color:#cf222e;font-weight:600}
.INFLIGHT,.in_flight{color:#9a6700;font-weight:600} .skipped{color:#57606a}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;margin-right:6px}
.b-PASS{background:#1a7f37} .b-FAIL{background:#cf222e} .b-INFLIGHT{background:#9a6700}
.details{font-size:12px;color:#3d444d;margin-top:3px}
"""


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, default=str, ensure_ascii=False)
    return html.escape(str(value))


def _details(details: dict[str, Any]) -> str:
    items = []
    for key, value in details.items():
        if value in (None, [], {}, 0, ""):
            continue
        shown = ", ".join(map(str, value)) if isinstance(value, list) else _e(value)
        items.append(f"<div><b>{_e(key.replace('_', ' '))}</b>: <code>{html.escape(shown) if isinstance(value, list) else shown}</code></div>")
    return f'<div class="details">{"".join(items)}</div>' if items else ""


def render_html(document: dict[str, Any]) -> str:
    """A self-contained page: the summary, one row per table, then each table's checks."""
    s = document.get("summary", {})
    tables = document.get("tables", [])
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Validation {_e(document.get('source'))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Lake validation: source {_e(document.get('source'))}</h1>",
        f"<div class='meta'>run {_e(document.get('run_id'))} &middot; {_e(document.get('started_at'))} &rarr; {_e(document.get('finished_at'))}"
        f" &middot; lake {_e(document.get('lake_root'))} ({_e(document.get('lake_format'))})</div>",
        f"<div><span class='badge b-PASS'>{s.get('passed', 0)} passed</span><span class='badge b-FAIL'>{s.get('failed', 0)} failed</span>"
        f"<span class='badge b-INFLIGHT'>{s.get('in_flight', 0)} in flight</span> of {s.get('tables', 0)} table(s)</div>",
        "<h2>Tables</h2><table><tr><th>verdict</th><th>table</th><th>source rows</th><th>lake rows</th><th>why</th></tr>",
    ]
    for t in tables:
        anchor = _e(f"t-{t['schema']}.{t['table']}")
        out.append(
            f"<tr><td class='{t['verdict']}'>{t['verdict']}</td><td><a href='#{anchor}'>{_e(t['schema'])}.{_e(t['table'])}</a></td>"
            f"<td>{_e(t.get('source_rows'))}</td><td>{_e(t.get('lake_rows'))}</td><td>{_e(t['reason'])}</td></tr>"
        )
    out.append("</table>")
    for t in tables:
        anchor = _e(f"t-{t['schema']}.{t['table']}")
        out.append(f"<h2 id='{anchor}'><span class='badge b-{t['verdict']}'>{t['verdict']}</span>{_e(t['schema'])}.{_e(t['table'])}</h2>")
        out.append(f"<div class='meta'><code>{_e(t.get('location'))}</code> &middot; {t.get('seconds', 0)} s</div>")
        out.append("<table><tr><th>check</th><th>status</th><th>expected</th><th>observed</th><th>message</th></tr>")
        for c in t["checks"]:
            out.append(
                f"<tr><td><code>{_e(c['name'])}</code></td><td class='{c['status']}'>{_e(c['status'])}</td>"
                f"<td>{_e(c.get('expected'))}</td><td>{_e(c.get('observed'))}</td><td>{_e(c['message'])}{_details(c.get('details') or {})}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
