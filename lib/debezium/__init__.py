"""Debezium connector configs (built per dialect, pure) and the Kafka Connect REST client."""
