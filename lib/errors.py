"""Exception types shared by the jobs. Jobs map them to exit codes (see jobs/_cli.py)."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(PipelineError):
    """A bad configuration value. ``path`` is the YAML path (``sources.shop.connection.port``)."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class UsageError(PipelineError):
    """A bad command-line flag or combination of flags (exit code 2)."""


class SourceError(PipelineError):
    """A source database call failed. ``transient`` says whether retrying may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        self.transient = transient
        super().__init__(message)
