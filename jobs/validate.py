"""Validate: check the lake tables of one source against the source and against expectations (docs/reference.md).

    python jobs/validate.py --config config/pipeline.yaml --source shop [--tables 'public.*'] [--report reports/validation_shop.json] [--repair]

Prints ``PASS|FAIL|INFLIGHT schema.table: why`` per table, writes a JSON report and an HTML report beside
it, and appends the results to ``<lake.root>/_pipeline/validation``. With ``--repair``, every table that
differs from its source is re-copied where it differs and validated again (docs/validation.md). Exit 0
all passed, 1 a table failed, 2 bad usage or config.
"""

from __future__ import annotations

from pathlib import Path

try:
    import _cli
except ModuleNotFoundError:  # this file alone, the project from the wheel (spark-submit --py-files, docs/deploy.md)
    from jobs import _cli

from lib.lake.paths import report_target
from lib.selection import parse_globs
from lib.validate.runner import ValidateOptions, check_rules, validate_source


def main() -> int:
    p = _cli.parser("Check the lake tables of one source against the source and against expectations.")
    p.add_argument("--repair", action="store_true",
                   help="re-copy what differs (the differing key buckets, or the whole table) from a consistent source snapshot, then validate those tables again")
    p.add_argument("--report", help="JSON report path; the HTML report goes beside it (default: reports/validation_<source>.json)")
    args = p.parse_args()
    config = _cli.load(args)
    # a local Path Python writes (plain, file://, /Volumes/... and, on Databricks, dbfs:/ as /dbfs/...), or
    # an abfss://, wasbs://... URI written through Hadoop's FileSystem (lib.lake.paths.report_target)
    report = report_target(args.report) if args.report else Path("reports") / f"validation_{args.source}.json"
    options = ValidateOptions(report_path=report, tables=parse_globs(args.tables), repair=args.repair)
    check_rules(config, args.source, options.tables)  # a bad rule exits 2 before Spark starts
    spark = _cli.spark(config, f"validate:{args.source}")
    return validate_source(spark, config, args.source, options)


if __name__ == "__main__":
    _cli.run(main)
