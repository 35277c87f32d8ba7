"""Is the source's connector streaming and how current is each table: heartbeats and freshness,
the replication slot's health and what recovers it."""
