"""The CDC stream: Debezium change events applied to the lake tables by MERGE.

- ``loop/``: the running stream (lib.cdc.loop.stream), its per-table apply loop, table specs, status
  events and the pipeline tables it keeps (tombstones, dead letters).
- ``spark/``: the Spark path of one apply (Spark reads, decodes and MERGEs the range).
- ``direct/``: the direct path of one apply (Kafka client, Python decode, delta-rs MERGE); it hands
  any range it cannot apply exactly to the Spark path before writing anything.
- ``health/``: connector and replication-slot health, heartbeats and freshness.
- Shared rules, beside them (pure): ``plan`` (table specs, the MERGE), ``decode`` and ``lake_types``
  (Debezium values and types to lake values and types), ``envelope`` and ``event_format`` (the
  message format per source type), ``visibility`` (is an event in the bulk copy), ``offsets`` (Kafka
  ranges), ``outcome`` (what an apply did); ``source_catalog`` and ``delta_rs_merge`` are the thin
  layers both paths share.
"""
