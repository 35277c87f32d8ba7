import sys
from datetime import UTC, datetime
from pathlib import Path

from lib.dialects.postgres.catalog import build_tables
from lib.status.record import StatusEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "jobs"))
from status import render_table


def test_build_tables_assembles_columns_keys_and_estimates():
    tables = build_tables(
        [("public", "orders", 1500, 12, 98304), ("public", "fresh", -1, 0, 8192)],
        [
            ("public", "orders", "id", 1, False, "bigint", "int8", "b", "N", None),
            ("public", "orders", "tags", 2, True, "text[]", "_text", "b", "A", "text"),
            ("public", "fresh", "v", 1, True, "positive_int", "int4", "b", "N", None),
        ],
        [("public", "orders", ["id"])],
    )
    orders, fresh = tables
    assert (orders.primary_key, orders.estimated_rows, orders.pages, orders.size_bytes) == (("id",), 1500, 12, 98304)
    assert [c.name for c in orders.columns] == ["id", "tags"]
    assert orders.column("tags").info("elem_typname") == "text" and orders.column("tags").nullable
    assert fresh.estimated_rows == -1 and fresh.primary_key == ()  # never analyzed: the planner counts


def test_status_render_aligns_columns_and_shows_errors_or_notes():
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    events = [
        StatusEvent("shop", "public", "orders", "bulk", "completed", "/l", row_count=100, chunks_total=2, chunks_done=2,
                    snapshot_position="0/16B3748", attempts=1, updated_at=at),
        StatusEvent("shop", "public", "log", "bulk", "failed", "/l", attempts=3, last_error="permission denied for table log", updated_at=at),
        StatusEvent("shop", "public", "items", "cdc", "running", "/l", row_count=7, chunks_total=1, chunks_done=1, snapshot_position="0/16B3748",
                    cdc_position="25000000/25000128", cdc_event_time=datetime(2026, 11, 23, 10, 5, 1, tzinfo=UTC), cdc_inserted=12, cdc_updated=3,
                    cdc_deleted=1, cdc_lag=0, cdc_latency_ms=850, attempts=1, updated_at=at),
    ]
    lines = render_table(events, now=datetime(2026, 11, 23, 10, 5, 3, tzinfo=UTC))
    assert lines[0].split() == ["source", "schema", "table", "phase", "state", "row_count", "chunks", "snapshot_position",
                                "cdc_position", "cdc_event_time", "cdc_counts", "lag", "latency_ms", "behind", "attempts", "updated_at", "error_or_note"]
    assert lines[1].split()[:8] == ["shop", "public", "orders", "bulk", "completed", "100", "2/2", "0/16B3748"]
    assert lines[1].split()[8:] == ["1", "2026-11-23", "10:00:00"]  # no CDC values yet: empty columns
    assert lines[2].endswith("permission denied for table log")
    assert lines[3].split()[3:] == ["cdc", "running", "7", "1/1", "0/16B3748", "25000000/25000128", "2026-11-23", "10:05:01", "12/3/1", "0", "850",
                                    "2s", "(no", "heartbeat", "seen", "yet)", "1", "2026-11-23", "10:00:00"]  # current up to its last change
    assert len({line.index("bulk") for line in lines[1:3]}) == 1 and lines[3].index("cdc") == lines[1].index("bulk")  # aligned
    assert lines[3].index("12/3/1") == lines[0].index("cdc_counts")
