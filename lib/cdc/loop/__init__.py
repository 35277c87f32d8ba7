"""The running stream: which tables it applies (specs), the per-table apply loop that schedules their
ranges, the status each apply leads to, and the pipeline tables it keeps beside the lake tables
(tombstones, dead letters). Each range is applied by lib.cdc.direct or lib.cdc.spark."""
