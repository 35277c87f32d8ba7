"""Kafka client settings and connection checks, shared by every Kafka client of the jobs."""
