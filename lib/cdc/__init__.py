"""The CDC stream: decoding Debezium change events into the lake types the bulk load produces."""
