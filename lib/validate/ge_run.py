"""Running expectation specs with Great Expectations 1.x on a Spark DataFrame (thin layer).

An ephemeral, in-memory context with analytics and progress bars off; one Spark datasource whose
DataFrame asset is validated whole. Columns are handed to GE under plain aliases (``c0``, ``c1``, ...)
because GE's Spark metrics do not quote names with dots or spaces; results are mapped back.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lib.spark_sql import ident
from lib.validate.expectations import ExpectationSpec, check_from_result
from lib.validate.model import Check

log = logging.getLogger("validate")
_lock = threading.Lock()
_context: Any = None


def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no usage statistics leave the machine
    for noisy in ("great_expectations", "backoff"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # posthog (GE's analytics client, off here) resets its level and complains that it has no key: mute it
    logging.getLogger("posthog").disabled = True
    import great_expectations as gx

    return gx


def _get_context() -> Any:
    global _context
    with _lock:
        if _context is None:
            gx = _gx()
            from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            _context = gx.get_context(project_config=config, mode="ephemeral")
            _context.data_sources.add_spark("lake")
        return _context


def _class_name(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def run_expectations(df: DataFrame, specs: Sequence[ExpectationSpec], suite_name: str) -> list[Check]:
    """One Check per spec; specs naming a column the lake lacks are skipped (the schema check fails)."""
    if not specs:
        return []
    present = list(df.columns)
    aliases = {name: f"c{i}" for i, name in enumerate(present)}
    back = {alias: name for name, alias in aliases.items()}
    runnable = [s for s in specs if all(c in aliases for c in s.columns)]
    checks = [
        Check(s.name, "expectation", "skipped", f"{s.name}: column missing in the lake", None, None, {"origin": s.origin})
        for s in specs
        if s not in runnable
    ]
    if not runnable:
        return checks
    gx = _gx()
    context = _get_context()
    used = sorted({c for s in runnable for c in s.columns}, key=present.index)
    frame = df.select(*[F.col(ident(c)).alias(aliases[c]) for c in used]) if used else df.select()
    with _lock:  # the context's stores are shared; validate one table at a time
        datasource = context.data_sources.get("lake")
        asset = datasource.add_dataframe_asset(name=suite_name)
        try:
            batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
            suite = gx.ExpectationSuite(name=suite_name)
            for spec in runnable:
                suite.add_expectation(_expectation(gx, spec, aliases))
            result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
        finally:
            datasource.delete_asset(suite_name)
    by_config = [r.to_json_dict() for r in result.results]
    # GE may reorder results; match them to specs by type and arguments
    for spec in runnable:
        checks.append(check_from_result(spec, _find(by_config, spec, aliases), back))
    return checks


def _expectation(gx: Any, spec: ExpectationSpec, aliases: dict[str, str]) -> Any:
    cls = getattr(gx.expectations, _class_name(spec.type))
    kwargs = spec.args()
    if spec.type == "expect_compound_columns_to_be_unique":
        kwargs["column_list"] = [aliases[c] for c in spec.columns]
    elif spec.columns:
        kwargs["column"] = aliases[spec.columns[0]]
    return cls(**kwargs)


def _find(results: list[dict[str, Any]], spec: ExpectationSpec, aliases: dict[str, str]) -> dict[str, Any]:
    want_columns = [aliases[c] for c in spec.columns]
    for i, r in enumerate(results):
        config = r.get("expectation_config") or {}
        kwargs = config.get("kwargs") or {}
        columns = kwargs.get("column_list") or ([kwargs["column"]] if "column" in kwargs else [])
        same_args = all(kwargs.get(k) == v or (isinstance(v, float) and kwargs.get(k) == float(v)) for k, v in spec.kwargs)
        if config.get("type") == spec.type and columns == want_columns and same_args:
            return results.pop(i)
    return {"success": False, "exception_info": {"raised_exception": True, "exception_message": "no result returned by Great Expectations"}}
