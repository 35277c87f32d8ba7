"""The Spark path of an apply: Spark's Kafka source reads the range, Spark SQL decodes it (the
expressions of lib.cdc.decode / lib.cdc.plan), and Delta-Spark (or delta-rs) MERGEs it. It applies
every range, including those the direct path hands back, and dead-letters what it cannot decode."""
