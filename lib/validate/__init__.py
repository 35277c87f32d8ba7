"""Validation: is a lake table equal to its source, and does it meet its expectations (jobs/validate.py)."""
