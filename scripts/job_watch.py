"""A pipeline job run as a subprocess by the demo and the benchmarks, its log parsed as it comes.

The job's merged stdout/stderr is copied line by line (to a file, and/or to stderr with a prefix) and
read with the stream's own log-line patterns (lib.cdc.loop.batch_line): its per-batch lines, the time it
logged "cdc stream started", whether it logged "cdc stream stopped". The job runs in a session of its
own, so SIGKILL (the last resort) reaches its JVM too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from lib.cdc.loop.batch_line import READY_LINE, STARTED_LINE, STOPPED_LINE, parse_batch_line  # noqa: E402


class JobWatch:
    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path | None = None, echo_prefix: str | None = None,
                 tail_lines: int = 40, cwd: Path | None = REPO_ROOT) -> None:
        """Start ``cmd`` in ``cwd`` (None: this process's directory); copy its output to ``log_path``
        and/or to stderr behind ``echo_prefix``; keep its last ``tail_lines`` lines."""
        self.cmd = cmd
        self.log_path = log_path
        self.echo_prefix = echo_prefix
        self.batches: list[dict[str, Any]] = []  # parsed batch lines, with the wall time they appeared ("at")
        self.started_at: float | None = None
        self.ready_at: float | None = None  # its "cdc stream ready" line: the tables are known, the apply loop runs
        self.stopped_line = False
        self.tail: list[str] = []
        self.tail_lines = tail_lines
        self.changed = threading.Condition()
        self.t0 = time.time()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("w", encoding="utf-8") if self.log_path else contextlib.nullcontext() as log:
            for raw in self.proc.stdout:
                now = time.time()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if log is not None:
                    log.write(line + "\n")
                    log.flush()
                if self.echo_prefix is not None:
                    sys.stderr.write(self.echo_prefix + line + "\n")
                    sys.stderr.flush()
                with self.changed:
                    self.tail = [*self.tail[-(self.tail_lines - 1):], line]
                    batch = parse_batch_line(line)
                    if batch is not None:
                        batch["at"] = now
                        self.batches.append(batch)
                    elif self.started_at is None and STARTED_LINE.search(line):
                        self.started_at = now
                    elif self.ready_at is None and READY_LINE.search(line):
                        self.ready_at = now
                    elif STOPPED_LINE.search(line):
                        self.stopped_line = True
                    self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_until(self, predicate: Callable[[JobWatch], Any], timeout: float) -> bool:
        """True once ``predicate(self)`` holds; False after ``timeout`` s or when the job ended first."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self):
                if not self.running() and not self._reader.is_alive():
                    return bool(predicate(self))
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 1.0))
        return True

    def finish(self, timeout: float) -> int:
        """Wait for the job to exit; kill it and raise after ``timeout`` s."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{' '.join(self.cmd[1:3])} did not finish within {timeout:.0f}s (killed; log {self.log_path})") from None
        self._reader.join(timeout=30)
        return code

    def stop(self, grace: float) -> tuple[int, bool, float]:
        """SIGTERM, SIGKILL of its process group after ``grace`` s: (exit code, killed, seconds)."""
        started = time.monotonic()
        killed = False
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait(timeout=30)
            killed = True
        self.kill()  # a JVM left behind by the job, if any
        self._reader.join(timeout=30)
        return code, killed, time.monotonic() - started

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def last_lines(self, n: int = 25) -> list[str]:
        with self.changed:
            return self.tail[-n:]
