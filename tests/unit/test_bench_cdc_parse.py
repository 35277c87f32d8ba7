"""scripts/bench_cdc.py: parsing of jobs/cdc_stream.py's per-batch log line and the latency summary (pure)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench_cdc.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_cdc", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cdc"] = module
    spec.loader.exec_module(module)
    return module


LINE = (
    "12:01:07 INFO  lib.cdc.batch: cdc batch 3: 200000 events, 20 tables in 41.3s (4843 events/s); "
    "inserted 50000 updated 120000 deleted 30000 skipped 0 dead-lettered 0; lag 12345; latency p50 95.2s p95 130.0s"
)


def test_batch_line_parsed(bench):
    got = bench.parse_batch_line(LINE)
    assert got == {
        "batch": 3,
        "events": 200000,
        "tables": 20,
        "seconds": 41.3,
        "rate": 4843.0,
        "inserted": 50000,
        "updated": 120000,
        "deleted": 30000,
        "skipped": 0,
        "dead_lettered": 0,
        "lag": 12345,
        "p50": 95.2,
        "p95": 130.0,
    }


def test_batch_line_singular_and_bare_message(bench):
    line = (
        "cdc batch 0: 1 events, 1 tables in 0.5s (2 events/s); inserted 1 updated 0 deleted 0 skipped 0 "
        "dead-lettered 0; lag 0; latency p50 1.0s p95 1.0s"
    )
    got = bench.parse_batch_line(line)
    assert got["batch"] == 0 and got["events"] == 1 and got["lag"] == 0 and got["p95"] == 1.0


def test_empty_batch_line(bench):
    assert bench.parse_batch_line("12:00:00 INFO  lib.cdc.batch: cdc batch 7: no change events") == {"batch": 7, "events": 0, "empty": True}


@pytest.mark.parametrize(
    "line",
    [
        "12:00:00 INFO  cdc_stream: cdc stream started: source s, 20 tables, checkpoint /tmp/x, trigger 5s",
        "cdc batch 3: 200000 events, 20 tables in 41.3s (4843 events/s)",  # truncated
        "cdc batch x: 1 events, 1 tables in 0.5s (2 events/s); inserted 1 updated 0 deleted 0 skipped 0 dead-lettered 0; lag 0; latency p50 1.0s p95 1.0s",
        "",
    ],
)
def test_other_lines_ignored(bench, line):
    assert bench.parse_batch_line(line) is None


def test_weighted_median(bench):
    assert bench.weighted_median([]) is None
    assert bench.weighted_median([(5.0, 0)]) is None
    assert bench.weighted_median([(1.0, 1), (9.0, 1), (2.0, 1)]) == 2.0
    # one big batch dominates the event-weighted median
    assert bench.weighted_median([(1.0, 10), (7.0, 1000), (2.0, 10)]) == 7.0
    assert bench.weighted_median([(1.0, 1), (3.0, 1)]) == 1.0


def test_summarize_batches(bench):
    lines = [
        "cdc batch 0: no change events",
        "cdc batch 1: 100 events, 2 tables in 2.0s (50 events/s); inserted 25 updated 60 deleted 15 skipped 0 dead-lettered 0; lag 10; latency p50 3.0s p95 6.0s",
        "cdc batch 2: 300 events, 3 tables in 3.0s (100 events/s); inserted 75 updated 180 deleted 45 skipped 1 dead-lettered 2; lag 0; latency p50 4.0s p95 5.0s",
    ]
    s = bench.summarize_batches([bench.parse_batch_line(x) for x in lines])
    assert s["batches"] == 3 and s["batches_with_events"] == 2
    assert s["events"] == 400 and s["batch_seconds"] == 5.0 and s["events_per_batch_second"] == 80
    assert (s["inserted"], s["updated"], s["deleted"], s["skipped"], s["dead_lettered"]) == (100, 240, 60, 1, 2)
    assert s["latency_p50_weighted_median_s"] == 4.0
    assert s["latency_p95_weighted_median_s"] == 5.0
    assert s["latency_p95_max_s"] == 6.0


def test_split_mix_keeps_ratios_over_calls(bench):
    carry: dict[str, float] = {}
    total = {"update": 0, "insert": 0, "delete": 0}
    for _ in range(100):
        for op, n in bench.split_mix(50, carry).items():
            total[op] += n
    assert total == {"update": 3000, "insert": 1250, "delete": 750}
