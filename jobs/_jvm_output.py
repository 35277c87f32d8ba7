"""The local driver JVM's own stderr, filtered: lines that mean nothing to a user are dropped.

Spark's launcher always adds ``--add-modules=jdk.incubator.vector``, and the JVM then prints
``WARNING: Using incubator modules: jdk.incubator.vector`` itself, before any logging is set up (no JVM
flag turns it off). The JVM is therefore started with its stderr on a pipe; a daemon thread copies
every other line to this process's stderr unchanged. Log4j messages are filtered in
config/log4j2.properties instead, where their loggers are known.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from typing import IO

# Whole lines (bytes, without the line end) dropped from the JVM's stderr.
NOISE = (re.compile(rb"^WARNING: Using incubator modules: jdk\.incubator\.vector\s*$"),)


def is_noise(line: bytes) -> bool:
    return any(p.match(line.rstrip(b"\r\n")) for p in NOISE)


def _copy(stream: IO[bytes], out: IO[bytes]) -> None:
    for line in iter(stream.readline, b""):
        if not is_noise(line):
            out.write(line)
            out.flush()


def launch_gateway_quietly(conf: dict[str, str]) -> None:
    """Start the local driver JVM (as ``SparkContext`` would) with its stderr filtered; the session
    builder then uses this gateway. Does nothing when a gateway exists already."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    spark_conf = SparkConf(loadDefaults=False)
    for key, value in conf.items():
        spark_conf.set(key, value)
    gateway = launch_gateway(spark_conf, popen_kwargs={"stderr": subprocess.PIPE})
    threading.Thread(target=_copy, args=(gateway.proc.stderr, sys.stderr.buffer), name="jvm-stderr", daemon=True).start()
    SparkContext._ensure_initialized(gateway=gateway)


def submitted_conf() -> dict[str, str]:
    """The Spark properties spark-submit gave this process's driver JVM (started before Python, reached through
    ``PYSPARK_GATEWAY_PORT``): what a session builder's settings would otherwise replace. Classic only."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())
