"""Suite-wide hooks: after the run, the time each test file took (setup, call and teardown summed).

The whole suite must stay well under 35 minutes (CI allows 90); this table shows where the time goes, file by file,
in every CI log.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

_FILE_SECONDS: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _FILE_SECONDS[report.nodeid.split("::", 1)[0]] += report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FILE_SECONDS:
        return
    ranked = sorted(_FILE_SECONDS.items(), key=lambda item: item[1], reverse=True)
    total = sum(_FILE_SECONDS.values())
    terminalreporter.write_sep("=", f"seconds per test file ({total:.0f} s in all, slowest 25)")
    for path, seconds in ranked[:25]:
        terminalreporter.write_line(f"{seconds:8.1f}s  {100 * seconds / total:4.1f}%  {path}")
