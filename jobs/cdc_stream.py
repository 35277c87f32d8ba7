"""CDC stream: Debezium change events from Kafka applied to the lake tables by MERGE (docs/reference.md).

    python jobs/cdc_stream.py --config config/pipeline.yaml --source shop [--available-now] [--trigger-seconds N]

Long-running by default: every table applies its own topic on its own cadence, and the stream looks
for new events every --trigger-seconds (docs/cdc-stream.md). SIGTERM or Ctrl-C stops it after the
running applies. --available-now applies everything in Kafka now, then stops. Exit 0 stopped cleanly,
1 a table failed (the others went on) or Kafka refused the connection, 2 bad usage or config.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

try:
    import _cli
except ModuleNotFoundError:  # this file alone, the project from the wheel (spark-submit --py-files, docs/deploy.md)
    from jobs import _cli

from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.config.model import KafkaConfig, SourceConfig
from lib.dialects import get_dialect
from lib.errors import UsageError
from lib.kafka.connection_check import check_connection
from lib.kafka.settings import librdkafka_settings
from lib.lake.catalog import sync_source
from lib.name_collisions import collisions_error, source_collisions, touching
from lib.selection import parse_globs

log = logging.getLogger("cdc_stream")


# The stream leaves excluded tables alone; the connector stops capturing a table once the bulk load has
# updated its include list.
STREAM_NOTE = (" (the stream applies the tables the status table lists that the source's include/exclude select; after "
               "excluding a table, run jobs/bulk_load.py once so the connector stops capturing it)")


def refuse_colliding_tables(stream: CdcStream, source: SourceConfig, options: StreamOptions) -> None:
    """Before the stream applies anything: the tables it applies (listed in the status table, selected by
    include/exclude and ``--tables``) must not share a
    Kafka topic or a lake path (lib/name_collisions.py); a collision that involves a table this run applies
    (``--tables``) is a config error, exit 2."""
    listed = [(schema, table) for _source, schema, table in stream.status.latest(source.name) if stream.selected(schema, table)]
    collisions = touching(source_collisions(source, listed, stream.lake_root), options.tables)
    if collisions:
        raise collisions_error(source.name, collisions, STREAM_NOTE)


def check_kafka(kafka: KafkaConfig) -> None:
    """Connect once with the configured security settings; raise KafkaConnectionError naming the cause."""
    started = time.monotonic()
    check_connection(librdkafka_settings(kafka))
    how = kafka.security_protocol + (f", {kafka.sasl_mechanism}" if kafka.sasl_mechanism else "")
    log.info("kafka: connected to %s (%s) in %.1fs", kafka.bootstrap_servers, how, time.monotonic() - started)


def main() -> int:
    p = _cli.parser("Apply the Debezium change events of one source to its lake tables.")
    p.add_argument("--available-now", action="store_true", help="apply everything in Kafka now, then stop")
    p.add_argument("--trigger-seconds", type=float, help="how often to look for new events (default: stream.trigger_seconds)")
    p.add_argument("--max-offsets-per-trigger", type=_cli.positive_int, help="messages per table apply at most")
    args = p.parse_args()
    if args.trigger_seconds is not None and args.trigger_seconds <= 0:
        raise UsageError(f"--trigger-seconds: expected a positive number, got {args.trigger_seconds}")
    if args.available_now and args.trigger_seconds is not None:
        raise UsageError("--available-now and --trigger-seconds exclude each other")
    config = _cli.load(args)
    source = config.source(args.source)
    dialect = get_dialect(source.type, f"sources.{source.name}.type")
    options = StreamOptions(args.available_now, args.trigger_seconds, args.max_offsets_per_trigger, tuple(parse_globs(args.tables) or ()))
    check_kafka(config.kafka)  # a refused login or an untrusted certificate stops here, named, not in a retrying client
    spark = _cli.spark(config, f"cdc_stream:{args.source}")
    stream = CdcStream(spark, config, source, dialect, options)
    refuse_colliding_tables(stream, source, options)
    if sync_source(spark, config, source.name, stream.lake_root):
        return 1
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the running applies", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    failed = stream.run(stop)
    if failed:
        log.error("cdc stream stopped: %d table(s) failed (jobs/status.py shows why)", failed)
        return 1
    log.info("cdc stream stopped")
    return 0


if __name__ == "__main__":
    _cli.run(main)
