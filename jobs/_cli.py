"""What every job shares: the import path, common flags, config loading and the exit-code contract.

Exit codes: 0 done, 1 a table or check failed, 2 bad usage or bad config (one line, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # make `lib` importable under python and spark-submit

from lib.config import Config, load_config  # noqa: E402
from lib.errors import ConfigError, PipelineError, UsageError  # noqa: E402
from lib.logs import add_secrets, redact, setup_logging  # noqa: E402
from lib.retry import short_error  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("job")
_secrets: tuple[str, ...] = ()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parser(description: str, source_required: bool = True) -> argparse.ArgumentParser:
    p = _Parser(description=description)
    p.add_argument("--config", required=True, help="path of the pipeline YAML config")
    p.add_argument("--source", required=source_required, help="source name (a key under `sources:`)")
    p.add_argument("--tables", help="only tables matching these globs (comma-separated, on table or schema.table)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    return p


def default_connector_config(source: str, root: Path = ROOT) -> Path:
    """Where the bulk load writes the Debezium connector config without ``--connector-config``: the
    checkout's ``config/debezium_<source>.json`` when the jobs run from a checkout (``pyproject.toml`` and
    ``config/`` beside ``jobs/``), else ``config/debezium_<source>.json`` under the current directory (the project imported
    from the wheel: ``--py-files``, a Databricks wheel task, the ``lakehouse-*`` commands)."""
    name = f"debezium_{source}.json"
    checkout = (root / "pyproject.toml").is_file() and (root / "config").is_dir()
    return root / "config" / name if checkout else Path("config") / name


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def load(args: argparse.Namespace) -> Config:
    """Set up logging, load the config once and register its secrets for redaction."""
    global _secrets
    setup_logging(args.log_level)
    config = load_config(args.config)
    _secrets = config.secrets()
    add_secrets(_secrets)
    if getattr(args, "source", None):
        config.source(args.source)  # unknown source -> ConfigError naming `sources`
    return config


def spark(config: Config, app_name: str) -> SparkSession:
    """The job's SparkSession with the ``storage:`` accounts' Hadoop settings: as ``spark.hadoop.*`` when
    the session is built here, set into the running session when one is reused (Databricks, spark-submit)
    and into a Spark Connect session (``SPARK_REMOTE``, docs/spark-connect.md)."""
    from _session import get_spark

    from lib.lake.azure_auth import spark_hadoop_conf, storage_settings
    from lib.lake.catalog import local_session_conf
    from lib.lake.delta_rs_storage import register_accounts
    from lib.lake.storage import apply_hadoop_settings

    register_accounts(config.storage)  # the same accounts for delta-rs (lib/lake/delta_rs_storage.py)
    settings = storage_settings(config.storage)
    catalog_conf = local_session_conf(config, config.checkpoints_root)
    session = get_spark(app_name, {**spark_hadoop_conf(settings), **catalog_conf})
    apply_hadoop_settings(session, settings)
    if config.storage:
        log.info("storage: %s", ", ".join(f"{a.name}.{a.endpoint} ({a.auth})" for a in config.storage))
    _warn_unredacted(session, config, settings)
    return session


def _warn_unredacted(session: SparkSession, config: Config, settings: dict[str, str]) -> None:
    """A session the job did not build (Databricks, an active spark-submit session) keeps its own
    spark.redaction.regex (a core setting a running session cannot change): say which secret settings
    it would show in the Spark UI and event logs, and what to set in the cluster's Spark config."""
    from lib.lake.session_conf import SECRET_REDACTION_REGEX, unredacted

    secrets = set(config.secrets())
    names = [key for key, value in (*settings.items(), *config.lake.spark_conf) if value in secrets]
    if not names:
        return
    try:
        regex = session.conf.get("spark.redaction.regex", None)
    except Exception:  # noqa: BLE001 - a session that does not expose the setting: nothing to claim
        return
    missed = unredacted(names, regex)
    if missed:
        log.warning(
            "this session's spark.redaction.regex does not match %s: the Spark UI and event logs would show their values; "
            "set spark.redaction.regex to %s in the cluster's Spark config (docs/azure.md)",
            ", ".join(sorted(missed)), SECRET_REDACTION_REGEX,
        )


def run(main: Callable[[], int]) -> None:
    """Run ``main`` and turn its outcome into the contract's exit code."""
    try:
        code = main()
    except ConfigError as exc:
        print(f"config error: {redact(str(exc), _secrets)}", file=sys.stderr)
        code = 2
    except UsageError as exc:
        print(f"usage error: {redact(str(exc), _secrets)}", file=sys.stderr)
        code = 2
    except PipelineError as exc:
        log.error("%s", redact(str(exc), _secrets))
        code = 1
    except KeyboardInterrupt:
        log.error("interrupted")
        code = 130
    except Exception as exc:  # noqa: BLE001 - anything unexpected: one redacted line, exit 1
        log.error("unexpected error: %s", redact(short_error(exc), _secrets))
        log.debug("details", exc_info=True)
        code = 1
    sys.stdout.flush()
    raise SystemExit(code)
