"""Operate a source's CDC plumbing (Debezium connector, and for PostgreSQL its slot and publication).

    python jobs/cdc_connector.py --config config/pipeline.yaml --source shop status [--json]
    python jobs/cdc_connector.py --config config/pipeline.yaml --source shop drop --yes
    python jobs/cdc_connector.py --config config/pipeline.yaml --source shop config
    python jobs/cdc_connector.py --config config/pipeline.yaml --source shop prepare-sql
"""

from __future__ import annotations

import json

try:
    import _cli
except ModuleNotFoundError:  # this file alone, the project from the wheel (spark-submit --py-files, docs/deploy.md)
    from jobs import _cli

from lib.debezium.admin import cdc_status, drop_cdc, status_lines
from lib.debezium.include import connector_config_from_globs
from lib.dialects import get_dialect
from lib.errors import ConfigError, UsageError


def main() -> int:
    p = _cli.parser("Show, print or remove a source's Debezium connector and the database's CDC objects.")
    p.add_argument(
        "action",
        choices=["status", "drop", "config", "prepare-sql"],
        help="status: connector state and lag; drop: remove the connector (and PostgreSQL's slot and publication); "
        "config: print the connector config as JSON without calling the database; prepare-sql: print the SQL a DBA runs once",
    )
    p.add_argument("--json", action="store_true", help="status as one JSON object")
    p.add_argument("--yes", action="store_true", help="confirm drop")
    args = p.parse_args()
    config = _cli.load(args)
    source = config.source(args.source)
    if source.cdc is None:
        raise ConfigError(f"sources.{source.name}.cdc", f"source {source.name!r} has no cdc section")
    dialect = get_dialect(source.type, f"sources.{source.name}.type")
    if args.action == "config":
        document = {"name": source.cdc.connector_name, "config": connector_config_from_globs(source, dialect)}
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    if args.action == "prepare-sql":
        if dialect.catalog_via_jdbc:
            _cli.spark(config, f"cdc_connector:{args.source}")  # the JDBC driver runs in the session's JVM
        from lib.bulk.runner import discover_tables

        _dialect, tables = discover_tables(config, source, None)
        for statement in dialect.prepare_sql(source, tables):
            print(statement if statement.startswith("--") else statement + ";")
        return 0
    if args.action == "status":
        report = cdc_status(source, dialect)
        print(json.dumps(report, sort_keys=True, default=str) if args.json else "\n".join(status_lines(report)))
        return 0
    if not args.yes:
        raise UsageError("drop removes the connector (and PostgreSQL's replication slot and publication): pass --yes to confirm")
    for line in drop_cdc(source, dialect):
        print(line)
    return 0


if __name__ == "__main__":
    _cli.run(main)
