"""The baseline under the CDC stream's throughput: plain Spark reading the same Debezium messages.

`scripts/bench_cdc.py` runs this on the backlog before `jobs/cdc_stream.py --available-now` applies
it, in the same run on the same machine (the bulk benchmark's COPY and plain Spark JDBC play this role
there). Nothing of the stream runs here: Spark's Kafka source in batch mode over every topic matching
``--pattern``, from the earliest to the latest offsets, into Spark's ``noop`` sink:

    read    the message values as text (what every consumer of these messages pays)
    parse   the same, and ``from_json`` of each change event with the stream's DDL (compact messages
            as they are, messages with a schema block without it)

One warm-up pass first (JIT, Kafka consumers), then each pass once; one JSON object on stdout.

    .venv/bin/python scripts/bench_kafka_read.py --bootstrap 127.0.0.1:9092 --pattern 'prefix[.].+' --columns id,a,b
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "jobs")]

from _session import get_spark  # noqa: E402
from pyspark.sql import DataFrame  # noqa: E402

from lib.cdc.envelope import envelope_ddl, payload_ddl  # noqa: E402
from lib.cdc.plan import SCHEMA_PREFIX, body_sql, sql_string  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--pattern", required=True, help="Java regex of the topics (subscribePattern)")
    p.add_argument("--columns", required=True, help="comma-separated row columns of the envelope to parse")
    args = p.parse_args()
    spark = get_spark("bench_kafka_read")
    columns = args.columns.split(",")
    value = "CAST(value AS STRING)"
    event = (f"CASE WHEN startswith({value}, {sql_string(SCHEMA_PREFIX)}) THEN from_json({body_sql(value)}, {sql_string(envelope_ddl(columns))}).payload "
             f"ELSE from_json({value}, {sql_string(payload_ddl(columns))}) END")

    def messages() -> DataFrame:
        return (spark.read.format("kafka").option("kafka.bootstrap.servers", args.bootstrap)
                .option("subscribePattern", args.pattern).option("startingOffsets", "earliest").option("endingOffsets", "latest")
                .load().where("value IS NOT NULL"))

    passes = {
        "read": lambda: messages().selectExpr("CAST(value AS STRING) AS v"),
        "parse": lambda: messages().selectExpr(f"{event} AS p")
        .selectExpr("p.op", "p.before", "p.after", "p.source.lsn", "p.source.sequence", "p.source.txId", "p.source.ts_ms"),
    }
    events = messages().count()  # the warm-up pass
    out: dict[str, object] = {"events": events}
    for name, frame in passes.items():
        started = time.monotonic()
        frame().write.format("noop").mode("overwrite").save()
        seconds = time.monotonic() - started
        out[f"{name}_seconds"] = round(seconds, 2)
        out[f"{name}_events_per_s"] = round(events / seconds) if seconds > 0 else None
    print(json.dumps(out), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
