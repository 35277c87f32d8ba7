"""The status table: one append-only Delta event log, read as the latest event per table."""
