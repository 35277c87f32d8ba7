"""Bulk load: copy every selected table of one source into the lake (docs/reference.md).

    python jobs/bulk_load.py --config config/pipeline.yaml --source shop [--dry-run] [--tables 'public.*']
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import _cli
except ModuleNotFoundError:  # this file alone, the project from the wheel (spark-submit --py-files, docs/deploy.md)
    from jobs import _cli

from lib.bulk.runner import BulkOptions, plan_source, run_bulk_load
from lib.dialects import get_dialect
from lib.errors import UsageError
from lib.lake.catalog import sync_source, unregister_source
from lib.lake.paths import normalize_root
from lib.selection import parse_globs


def main() -> int:
    p = _cli.parser("Copy every selected table of one source into the lake, resumably.")
    p.add_argument("--dry-run", action="store_true", help="print the plan (tables, rows, partitions, split) and touch nothing")
    p.add_argument("--no-resume", action="store_true", help="reload tables that already completed")
    p.add_argument("--fresh-start", action="store_true", help="drop this source's lake tables, status and slot first")
    p.add_argument("--yes", action="store_true", help="confirm --fresh-start without asking")
    p.add_argument("--parallel-tables", type=_cli.positive_int, help="tables loaded at once (default: bulk.parallel_tables)")
    p.add_argument("--partitions", type=_cli.positive_int, help="ranges read in parallel per table (default: bulk.partitions)")
    p.add_argument("--connector-config", help="where to write the Debezium connector config (default: config/debezium_<source>.json of the checkout, "
                   "or under the current directory when the project comes from the wheel)")
    args = p.parse_args()
    config = _cli.load(args)
    options = BulkOptions(
        tables=parse_globs(args.tables),
        resume=not args.no_resume,
        fresh_start=args.fresh_start,
        parallel_tables=args.parallel_tables,
        partitions=args.partitions,
        connector_config_path=Path(args.connector_config) if args.connector_config else _cli.default_connector_config(args.source),
    )
    if args.dry_run:
        if get_dialect(config.source(args.source).type).catalog_via_jdbc:
            _cli.spark(config, f"bulk_load:{args.source}")  # the JDBC driver runs in the session's JVM
        for line in plan_source(config, config.source(args.source), options):
            print(line)
        return 0
    if args.fresh_start and not args.yes:
        _confirm_fresh_start(args.source)
    spark = _cli.spark(config, f"bulk_load:{args.source}")
    root = normalize_root(config.lake.root)
    if args.fresh_start:
        unregister_source(spark, config, args.source, root)
    code = run_bulk_load(spark, config, args.source, options)
    return max(code, sync_source(spark, config, args.source, root))


def _confirm_fresh_start(source: str) -> None:
    if not sys.stdin.isatty():
        raise UsageError("--fresh-start deletes data: pass --yes to confirm (stdin is not a terminal, cannot ask)")
    answer = input(f"Delete every lake table and the status of source {source!r}? Type the source name to confirm: ")
    if answer.strip() != source:
        raise UsageError("--fresh-start not confirmed")


if __name__ == "__main__":
    _cli.run(main)
