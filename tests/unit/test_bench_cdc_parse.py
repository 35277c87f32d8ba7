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


def test_the_apply_line_says_which_path_applied_the_range(bench):
    from lib.cdc import plan as P
    from lib.cdc.loop.table_status import apply_line
    from lib.cdc.outcome import TableOutcome

    spec = P.TableSpec("shop", "public", "t", "/l", ("id",), (("id", "bigint"),))
    for path in ("direct", "spark"):
        line = apply_line(3, TableOutcome(spec, path=path, events=10, inserted=10), 10, 0, 0.5, 0, 0.0)
        assert line.endswith(f"; by {path}") and bench.parse_batch_line(line)["path"] == path
    assert "path" not in bench.parse_batch_line("cdc batch 0: 1 events, 1 tables in 0.5s (2 events/s); inserted 1 updated 0 deleted 0 "
                                                "skipped 0 dead-lettered 0; lag 0; latency p50 1.0s p95 1.0s")


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


# ---------------------------------------------------------------- scripts/bench_cdc_metrics.py (pure)


@pytest.fixture(scope="module")
def metrics(bench):  # bench_cdc.py put scripts/ on sys.path
    import bench_cdc_metrics

    return bench_cdc_metrics


def _apply(table, events, at, seconds, p50, p95, lag=0):
    return {"batch": 1, "table": table, "events": events, "tables": 1, "seconds": seconds, "rate": 0.0, "inserted": 0,
            "updated": events, "deleted": 0, "skipped": 0, "dead_lettered": 0, "lag": lag, "p50": p50, "p95": p95, "at": at}


def test_table_apply_line_parsed(bench):
    line = ("cdc batch 7 [public.orders]: 1800 events, 1 table in 2.1s (857 events/s); inserted 200 updated 1500 deleted 100 "
            "skipped 0 dead-lettered 0; lag 0; latency p50 3.2s p95 4.9s")
    got = bench.parse_batch_line(line)
    assert got["table"] == "public.orders" and got["events"] == 1800 and got["tables"] == 1 and got["p50"] == 3.2


def test_overlapping_applies_wall_time(metrics):
    # two tables applied at once: 100 s of apply seconds, 60 s of wall time
    lines = [_apply("public.t1", 3000, at=1050.0, seconds=50.0, p50=1.0, p95=2.0),
             _apply("public.t2", 3000, at=1060.0, seconds=50.0, p50=3.0, p95=4.0)]
    s = metrics.summarize_batches(lines)
    assert s["batch_seconds"] == 100.0 and s["events_per_batch_second"] == 60
    assert s["apply_wall_seconds"] == 60.0 and s["events_per_apply_wall_second"] == 100


def test_latency_by_table_and_groups(metrics):
    lines = [_apply("public.t1", 900, 10.0, 1.0, p50=2.0, p95=3.0), _apply("public.t1", 100, 20.0, 1.0, p50=9.0, p95=9.5),
             _apply("public.t2", 10, 20.0, 1.0, p50=5.0, p95=6.0), _apply("public.t3", 0, 20.0, 1.0, p50=0.0, p95=0.0)]
    per = metrics.latency_by_table(lines)
    assert set(per) == {"public.t1", "public.t2"}  # an apply without events has no latency
    assert per["public.t1"] == {"applies": 2, "events": 1000, "p50_s": 2.0, "p95_s": 3.0}  # weighted by events
    hot = metrics.latency_of_tables(lines, ["public.t1"])
    others = metrics.latency_of_tables(lines, ["public.t1"], include=False)
    assert hot["latency_events"] == 1000 and hot["latency_p50_weighted_median_s"] == 2.0
    assert others["latency_events"] == 10 and others["latency_p50_weighted_median_s"] == 5.0


def test_measured_after_uses_apply_start(metrics):
    lines = [_apply("public.t1", 1, at=105.0, seconds=10.0, p50=1, p95=1), _apply("public.t1", 1, at=112.0, seconds=2.0, p50=1, p95=1),
             {"batch": 3, "events": 0, "empty": True, "at": 101.0}]
    assert [b["at"] for b in metrics.measured_after(lines, 100.0)] == [112.0, 101.0]


def test_direct_share(metrics):
    lines = [{**_apply("public.t1", 900, 10.0, 1.0, p50=1, p95=1), "path": "direct"},
             {**_apply("public.t2", 50, 11.0, 1.0, p50=1, p95=1), "path": "direct"},
             {**_apply("public.t3", 50, 12.0, 1.0, p50=1, p95=1), "path": "spark"},
             {**_apply("public.t4", 7, 13.0, 1.0, p50=1, p95=1)},  # a line that does not say who applied it
             {"batch": 5, "events": 0, "empty": True, "at": 14.0}]
    share = metrics.direct_share(lines)
    assert share == {"direct_share_applies": 0.6667, "direct_share_events": 0.95,
                     "applies_by_path": {"direct": {"applies": 2, "events": 950}, "spark": {"applies": 1, "events": 50}}}
    s = metrics.summarize_batches(lines)  # every phase's figures carry it
    assert s["direct_share_applies"] == 0.6667 and s["direct_share_events"] == 0.95
    assert metrics.direct_share([{**lines[0], "path": "spark"}])["direct_share_applies"] == 0.0
    assert metrics.direct_share(lines[3:]) == {"direct_share_applies": None, "direct_share_events": None, "applies_by_path": {}}


def test_direct_share_from_the_stream_lines(bench, metrics):
    tail = "skipped 0 dead-lettered 0; lag 0; latency p50 1.0s p95 1.0s"
    lines = [f"cdc batch 1 [public.t1]: 30 events, 1 table in 0.5s (60 events/s); inserted 0 updated 30 deleted 0 {tail}; by direct",
             f"cdc batch 2 [public.t2]: 10 events, 1 table in 0.5s (20 events/s); inserted 0 updated 10 deleted 0 {tail}; by spark"]
    share = metrics.direct_share([bench.parse_batch_line(x) for x in lines])
    assert (share["direct_share_applies"], share["direct_share_events"]) == (0.5, 0.75)
    assert bench._direct(share) == "by direct: 50% of the applies, 75% of the events (Spark: 1 apply, 10 events)"
    assert bench._direct({"direct_share_applies": None}).startswith("by direct: -")


def test_least_squares_slope(metrics):
    assert metrics.least_squares_slope([]) is None
    assert metrics.least_squares_slope([(1.0, 5.0)]) is None
    assert metrics.least_squares_slope([(1.0, 5.0), (1.0, 7.0)]) is None
    assert metrics.least_squares_slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert metrics.least_squares_slope([(0, 0), (1, 10), (2, 0), (3, 10), (4, 0)]) == pytest.approx(0.0)


def test_lag_profile_keeps_up_and_grows(metrics):
    sawtooth = [(float(t), float(2000 * (t % 5))) for t in range(0, 181)]  # applies every 5 s at 2,000/s
    p = metrics.lag_profile(sawtooth, rate=2000)
    assert p["lag_start"] == 0 and p["lag_end"] == 0 and p["lag_max"] == 8000 and p["window_seconds"] == 180
    assert p["keeps_up"] is True and abs(p["slope_events_per_s"]) <= 20
    growing = [(float(t), 100.0 * t) for t in range(0, 181)]  # applies 95% of 2,000/s
    g = metrics.lag_profile(growing, rate=2000)
    assert g["slope_events_per_s"] == 100.0 and g["slope_allowed_events_per_s"] == 20.0 and g["keeps_up"] is False
    assert g["lag_middle"] == 9000.0
    assert metrics.lag_profile([], rate=10) == {"samples": 0, "keeps_up": None}


def test_table_picker_follows_weights(metrics):
    picker = metrics.TablePicker(metrics.skew_weights(["a", "b", "c", "d"], "a", 0.9))
    picks = [picker.next() for _ in range(300)]
    assert picks.count("a") == 270 and picks.count("b") == picks.count("c") == picks.count("d") == 10
    # every window of 10 transactions gives the hot table 9 of them: no bursts
    assert all(picks[i:i + 10].count("a") == 9 for i in range(0, 300, 10))
    even = metrics.TablePicker(metrics.spread_weights(["x", "y", "z"]))
    assert [even.next() for _ in range(6)] == ["x", "y", "z", "x", "y", "z"]


def test_weights_refused(metrics):
    with pytest.raises(ValueError, match="share"):
        metrics.skew_weights(["a", "b"], "a", 1.5)
    with pytest.raises(ValueError, match="not one of the tables"):
        metrics.skew_weights(["a", "b"], "c", 0.9)
    with pytest.raises(ValueError, match="positive sum"):
        metrics.TablePicker({"a": 0.0})
    assert metrics.skew_weights(["a"], "a", 1.0) == {"a": 1.0}


def test_target_checks(metrics):
    report = {
        "apply": {"events_per_apply_wall_second": 6000},
        "baseline": {"parse_events_per_s": 10000},
        "phases": {
            "latency": {"latency_p50_weighted_median_s": 12.0, "latency_p95_weighted_median_s": 45.0},
            "rate": {"lag": {"slope_events_per_s": 5.0, "slope_allowed_events_per_s": 20.0}},
            "skew": {"hot": {"latency_p50_weighted_median_s": 8.0}},
            "light": {"latency_p50_weighted_median_s": 2.5},
        },
    }
    checks = {c["key"]: c for c in metrics.target_checks(report)}
    assert checks["backlog_apply_events_per_s"]["met"] is False and checks["backlog_apply_events_per_s"]["ratio_to_target"] == 0.5
    assert checks["backlog_apply_vs_parse_baseline"]["value"] == 0.6 and checks["backlog_apply_vs_parse_baseline"]["met"] is True
    assert checks["latency_p50_s"]["met"] is True and checks["latency_p95_s"]["met"] is False
    assert checks["latency_p95_s"]["ratio_to_target"] == 1.5
    assert checks["rate_lag_slope_events_per_s"]["target"] == 20.0 and checks["rate_lag_slope_events_per_s"]["met"] is True
    assert checks["skew_hot_p50_s"]["met"] is True and checks["light_p50_s"]["ratio_to_target"] == 0.5
    assert checks["many_hot_p50_s"]["value"] is None and checks["many_hot_p50_s"]["met"] is None  # not measured


def test_parse_phases(bench):
    errors = []
    assert bench.parse_phases("apply,rate2000, light", errors.append) == {"backlog", "rate", "light"}
    assert bench.parse_phases("none", errors.append) == set()
    bench.parse_phases("latency,bogus", errors.append)
    assert errors and "unknown bogus" in errors[0]


# ---------------------------------------------------------------------------- scripts/proc_tree.py (pure)


def test_proc_tree_parsing(bench):
    import proc_tree

    assert proc_tree.parse_stat_ppid("1234 (java (main) x) S 77 1234 1234 0 -1") == 77
    assert proc_tree.parse_kib("Name:\tjava\nVmPeak:\t 10 kB\nVmRSS:\t  524288 kB\n", "VmRSS") == 524288
    assert proc_tree.parse_kib("Name:\tkthreadd\n", "VmRSS") == 0
    rollup = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss:  900 kB\nPss:  600 kB\nPss_Anon:  500 kB\n"
    assert proc_tree.parse_kib(rollup, "Pss") == 600
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 13: 10, 20: 1}
    assert sorted(proc_tree.descendants(parents, 10)) == [10, 11, 12, 13]
    assert proc_tree.descendants(parents, 99) == [99]


def test_default_run_is_every_phase_at_the_issue_loads(bench):
    args = bench.parse_args([])
    assert args.phases == {"backlog", "latency", "rate", "skew", "light", "many"}
    assert (args.rows, args.tables, args.backlog) == (5_000_000, 20, 1_000_000)
    assert (args.latency_rate, args.rate_rate, args.rate_seconds, args.skew_rate, args.skew_share) == (500, 2000, 180, 500, 0.9)
    assert (args.light_rate, args.light_tables, args.many_tables, args.many_hot, args.many_rate) == (10, 3, 200, 5, 500)
    old = bench.parse_args(["--phases", "apply,latency", "--steady-rate", "300", "--steady-seconds", "20"])  # the issue-4 flags
    assert old.phases == {"backlog", "latency"} and old.latency_rate == 300 and old.latency_seconds == 20


def test_phase_specs(bench):
    args = bench.parse_args(["--tables", "4", "--rows", "400", "--many-tables", "10", "--many-hot", "2", "--light-tables", "2"])
    main = bench.Source("bench_cdc", "public", tuple(bench.table_names(4)), "p")
    many = bench.Source("bench_cdc_many", "many", tuple(bench.table_names(10, "m")), "p_many")
    specs = bench.steady_specs(args, main, many)
    assert specs["skew"].weights["t01"] == 0.9 and specs["skew"].hot == ("public.t01",)
    assert sorted(specs["light"].weights) == ["t01", "t02"] and specs["light"].rate == 10
    assert sorted(specs["many"].weights) == ["m01", "m02"] and specs["many"].hot == ("many.m01", "many.m02") and specs["many"].touch_all
    run = bench.Source("bench_cdc_many", "many", (), "benchcdc20261126141401_many")
    assert run.connector == "benchcdc-20261126141401_many"  # drop_database removes leftover benchcdc-* connectors
