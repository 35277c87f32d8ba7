"""CDC stream: Debezium change events from Kafka applied to the lake tables by MERGE (CONTRACT.md section 1).

    python jobs/cdc_stream.py --config config/pipeline.yaml --source shop [--available-now] [--trigger-seconds N]

Long-running by default (a micro-batch every --trigger-seconds; SIGTERM or Ctrl-C stops it after the
running batch). --available-now applies everything in Kafka now, then stops. Exit 0 stopped cleanly,
1 the query failed, 2 bad usage or config.
"""

from __future__ import annotations

import logging
import signal

try:
    import _cli
except ModuleNotFoundError:  # this file alone, the project from the wheel (spark-submit --py-files, docs/deploy.md)
    from jobs import _cli

from lib.cdc.stream import CdcStream, StreamOptions
from lib.dialects import get_dialect
from lib.errors import ConfigError, UsageError
from lib.selection import parse_globs

log = logging.getLogger("cdc_stream")


def main() -> int:
    p = _cli.parser("Apply the Debezium change events of one source to its lake tables.")
    p.add_argument("--available-now", action="store_true", help="apply everything in Kafka now, then stop")
    p.add_argument("--trigger-seconds", type=float, help="micro-batch interval (default: stream.trigger_seconds)")
    p.add_argument("--max-offsets-per-trigger", type=_cli.positive_int, help="messages per micro-batch at most")
    args = p.parse_args()
    if args.trigger_seconds is not None and args.trigger_seconds <= 0:
        raise UsageError(f"--trigger-seconds: expected a positive number, got {args.trigger_seconds}")
    if args.available_now and args.trigger_seconds is not None:
        raise UsageError("--available-now and --trigger-seconds exclude each other")
    config = _cli.load(args)
    source = config.source(args.source)
    dialect = get_dialect(source.type, f"sources.{source.name}.type")
    if source.type != "postgres":  # Oracle / SQL Server events: decoders and order keys exist, the stream does not use them yet
        raise ConfigError(f"sources.{source.name}.type", f"the CDC stream does not apply {source.type} events yet (docs/sources.md)")
    options = StreamOptions(args.available_now, args.trigger_seconds, args.max_offsets_per_trigger, tuple(parse_globs(args.tables) or ()))
    spark = _cli.spark(config, f"cdc_stream:{args.source}")
    query = CdcStream(spark, config, source, dialect, options).start()
    stop = {"requested": False}

    def request_stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the running batch", signum)
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while query.isActive and not stop["requested"]:
        query.awaitTermination(1.0)
    if stop["requested"] and query.isActive:
        while query.isActive and query.status.get("isTriggerActive"):  # let the running batch finish
            query.awaitTermination(0.2)
        query.stop()
    error = query.exception()
    if error is not None:
        log.error("cdc stream failed: %s", str(error.desc if hasattr(error, "desc") else error).splitlines()[0])
        return 1
    log.info("cdc stream stopped")
    return 0


if __name__ == "__main__":
    _cli.run(main)
