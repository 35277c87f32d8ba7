"""Resident memory of a process and all its descendants (a job and the JVM it starts), from /proc.

``RssSampler(pid).start()`` samples every ``interval`` seconds in a thread until ``stop()``; ``peak``
is the largest sum of VmRSS over the tree seen, with the per-command split of that moment. RSS counts
shared pages in each process that maps them, so the sum is an upper bound of what the tree holds.
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


def parse_vmrss_kib(status: str) -> int:
    """VmRSS in KiB from the text of /proc/<pid>/status (0 when absent: a kernel thread, a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # the process ended meanwhile
        return None


def tree_rss(root: int) -> dict[str, int]:
    """{command name: RSS in bytes} summed over ``root``'s process tree now."""
    parents = {}
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            stat = _read(PROC / entry.name / "stat")
            if stat:
                parents[int(entry.name)] = parse_stat_ppid(stat)
    out: dict[str, int] = {}
    for pid in descendants(parents, root):
        status = _read(PROC / str(pid) / "status")
        if status is None:
            continue
        name = next((ln.split(None, 1)[1].strip() for ln in status.splitlines() if ln.startswith("Name:")), "?")
        out[name] = out.get(name, 0) + parse_vmrss_kib(status) * 1024
    return out


class RssSampler:
    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.peak_split: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            split = tree_rss(self.pid)
            total = sum(split.values())
            self.samples += 1
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_split = total, split
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=10)
        return {
            "peak_rss_mib": round(self.peak_bytes / 2**20),
            "peak_rss_by_command_mib": {k: round(v / 2**20) for k, v in sorted(self.peak_split.items())},
            "samples": self.samples,
            "interval_seconds": self.interval,
        }
