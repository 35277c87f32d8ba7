"""Spark-native lakehouse ingestion: bulk load, CDC stream and validation (see README.md)."""
