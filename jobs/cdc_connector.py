"""Operate a source's CDC plumbing (Debezium connector, replication slot, publication).

    python jobs/cdc_connector.py --config config/pipeline.yaml --source shop status [--json]
    python jobs/cdc_connector.py --config config/pipeline.yaml --source shop drop --yes
"""

from __future__ import annotations

import json

import _cli

from lib.debezium.admin import cdc_status, drop_cdc, status_lines
from lib.dialects import get_dialect
from lib.errors import UsageError


def main() -> int:
    p = _cli.parser("Show or remove a source's Debezium connector, replication slot and publication.")
    p.add_argument("action", choices=["status", "drop"], help="status: connector state and slot lag; drop: remove connector, slot and publication")
    p.add_argument("--json", action="store_true", help="status as one JSON object")
    p.add_argument("--yes", action="store_true", help="confirm drop")
    args = p.parse_args()
    config = _cli.load(args)
    source = config.source(args.source)
    dialect = get_dialect(source.type, f"sources.{source.name}.type")
    if args.action == "status":
        report = cdc_status(source, dialect)
        print(json.dumps(report, sort_keys=True, default=str) if args.json else "\n".join(status_lines(report)))
        return 0
    if not args.yes:
        raise UsageError("drop removes the connector, the replication slot and the publication: pass --yes to confirm")
    for line in drop_cdc(source, dialect):
        print(line)
    return 0


if __name__ == "__main__":
    _cli.run(main)
