"""Memory of a process and all its descendants (a job and the JVM it starts), from /proc.

``RssSampler(pid).start()`` samples every ``interval`` seconds in a thread until ``stop()``: the
largest sum over the tree of each process's PSS (proportional set size, /proc/<pid>/smaps_rollup:
resident pages, a page shared by n processes counted 1/n in each), with the per-command split of that
moment, and the largest sum of VmRSS. PSS is what the tree holds; the RSS sum counts shared pages once
per process, so a child the JVM has just forked (sharing all its pages until it execs) would double it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def descendants(parents: dict[int, int], root: int) -> list[int]:
    """``root`` and every process whose chain of parents leads to it (pure; ``parents``: pid -> ppid)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def parse_stat_ppid(stat: str) -> int:
    """The parent pid from the text of /proc/<pid>/stat (the command may hold spaces and parentheses)."""
    return int(stat[stat.rindex(")") + 2:].split()[1])


def parse_kib(text: str, field: str) -> int:
    """``field`` (``VmRSS`` of /proc/<pid>/status, ``Pss`` of smaps_rollup) in KiB; 0 when absent (a
    kernel thread, a zombie)."""
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # the process ended meanwhile
        return None


def tree_memory(root: int) -> tuple[dict[str, int], int]:
    """({command name: PSS in bytes} summed over ``root``'s process tree now, the sum of their RSS)."""
    parents = {}
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            stat = _read(PROC / entry.name / "stat")
            if stat:
                parents[int(entry.name)] = parse_stat_ppid(stat)
    out: dict[str, int] = {}
    rss = 0
    for pid in descendants(parents, root):
        status = _read(PROC / str(pid) / "status")
        if status is None:
            continue
        name = next((ln.split(None, 1)[1].strip() for ln in status.splitlines() if ln.startswith("Name:")), "?")
        rollup = _read(PROC / str(pid) / "smaps_rollup")
        pss = parse_kib(rollup, "Pss") if rollup else parse_kib(status, "VmRSS")
        out[name] = out.get(name, 0) + pss * 1024
        rss += parse_kib(status, "VmRSS") * 1024
    return out, rss


class RssSampler:
    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.peak_rss_bytes = 0
        self.peak_split: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            split, rss = tree_memory(self.pid)
            total = sum(split.values())
            self.samples += 1
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_split = total, split
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=10)
        return {
            "peak_pss_mib": round(self.peak_bytes / 2**20),
            "peak_pss_by_command_mib": {k: round(v / 2**20) for k, v in sorted(self.peak_split.items()) if v >= 2**20},
            "peak_rss_sum_mib": round(self.peak_rss_bytes / 2**20),
            "samples": self.samples,
            "interval_seconds": self.interval,
        }
