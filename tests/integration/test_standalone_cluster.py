"""The jobs on a real Spark standalone cluster: a master and two workers started from pyspark's own jars.

``local[2]`` runs the executors inside the driver's JVM, so it hides what a cluster exposes: the jars and the
Python code shipped to executors, settings (Azure credentials among them) reaching executor-side Hadoop
filesystems, JDBC and Kafka read by the executors themselves. Here the master and each worker are JVMs of their
own (``spark-class ...Master`` / ``...Worker``, one core and 1 GiB each), and every job is submitted as
docs/deploy.md says for a cluster in client mode: ``spark-submit --master spark://... --properties-file
dist/spark-submit.conf --py-files <wheel> <job file alone>`` from a directory that is not the checkout, the lake on
Azurite (WASB, a fresh container per run), so the executors (separate JVMs, started by the workers in their own
work directories) read PostgreSQL over JDBC, read Kafka and write Azure storage themselves.

One scenario, in order: the bulk load; real changes captured by the real Debezium connector through the local
stack's Kafka Connect, then ``cdc_stream.py --available-now``; ``validate.py`` with its report on Azurite. Every
lake table is compared with its source value by value, read from Azurite by delta-rs (independently of Spark and
Hadoop); each job's event log and the workers' JSON show that every job ran tasks on executors of both workers.
The cluster is stopped at the end (process groups killed, none left). A last check reads the driver address each
driver advertised: the one spark-submit was given, not the local session's loopback address.

Needs the local stack (`make up`: PostgreSQL, Kafka, Kafka Connect + Debezium, Azurite on 127.0.0.1:10000).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from .azurite import ACCOUNT_HOST, assert_equal_by_delta_rs, blobs, fresh_container
from .conftest import PG, Source
from .kafka_events import wait_until_captured
from .test_cdc_decode import cleanup
from .test_cdc_stream import stream_config

ROOT = Path(__file__).resolve().parents[2]

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYSPARK = ROOT / ".venv" / "lib" / "python3.11" / "site-packages" / "pyspark"
WHEEL = ROOT / "dist" / "lakehouse_ingest-0.1.0-py3-none-any.whl"
WORKERS = 2
# Every JVM of the test (master, workers, driver, executors) compiles with C1 only and collects with one thread:
# short-lived JVMs on two shared cores spend less CPU on C2 and GC threads. Test speed only, not a product setting.
SHORT_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# What the test gives spark-submit for the driver's address, which every driver must advertise.
DRIVER_HOST = "localhost"

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), ok boolean, day date,
  seen timestamptz, score double precision, tags text[], raw bytea);
INSERT INTO {s}.items SELECT g, 'item ' || g, g % 7, g * 1.25, g % 2 = 0, date '2024-01-01' + g,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' + g * interval '1 microsecond', g / 3.0, ARRAY['t' || g % 3, NULL],
  decode(md5(g::text), 'hex') FROM generate_series(1, 2000) g;
CREATE TABLE {s}."Mixed Case T" ("Key Col" text PRIMARY KEY, "Val q" int, "When" timestamp);
INSERT INTO {s}."Mixed Case T" SELECT 'k' || g, g, timestamp '2023-06-01 12:00:00' + g * interval '1 day' FROM generate_series(1, 50) g;
ANALYZE {s}.items;
"""
CHANGES = """
UPDATE {s}.items SET qty = qty + 100, name = name || ' (updated)', tags = ARRAY['u'] WHERE id % 40 = 0;
DELETE FROM {s}.items WHERE id BETWEEN 10 AND 19;
UPDATE {s}.items SET id = 100000 + id WHERE id = 20;
INSERT INTO {s}.items VALUES (5001, 'fresh', 1, 1.00, NULL, NULL, now(), NULL, NULL, NULL);
UPDATE {s}."Mixed Case T" SET "Val q" = -1, "When" = NULL WHERE "Key Col" = 'k1';
DELETE FROM {s}."Mixed Case T" WHERE "Key Col" = 'k2';
INSERT INTO {s}."Mixed Case T" VALUES ('New Key', 7, '2025-01-02 03:04:05.678901');
"""
KEYS = {"_marker": "token", "items": "id", "Mixed Case T": "Key Col"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


class Cluster:
    """A Spark standalone master and its workers, each a JVM in a process group of its own."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port, self.webui = free_port(), free_port()
        self.worker_uis = [free_port() for _ in range(WORKERS)]
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_CONF_DIR")}
        self.env.update(SPARK_HOME=str(PYSPARK), SPARK_LOCAL_IP="127.0.0.1", SPARK_LOG_DIR=str(tmp), SPARK_LOCAL_DIRS=str(tmp),
                        SPARK_DAEMON_MEMORY="256m", SPARK_DAEMON_JAVA_OPTS=SHORT_JVM)  # executors' scratch space under tmp too

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str]) -> None:
        log = self.tmp / f"{name}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.procs.append(subprocess.Popen([str(PYSPARK / "bin" / "spark-class"), *args], cwd=self.tmp, env=self.env, stdout=out,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))

    def wait_until(self, what: str, ready: Any, timeout: float = 120.0) -> None:
        """Poll the master until ``ready(state)``; fail at once if a daemon died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [log for proc, log in zip(self.procs, self.logs, strict=True) if proc.poll() is not None]
            assert not dead, f"{dead[0].name} exited: {dead[0].read_text()[-3000:]}"
            try:
                if ready(self.master_state()):
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        pytest.fail(f"{what} within {timeout:.0f} s; logs: " + " | ".join(log.read_text()[-1500:] for log in self.logs))

    def start(self) -> None:
        """The master, then the workers (each: 1 core, 1 GiB for executors, its own work directory); :meth:`wait_for_workers`
        waits until they registered."""
        self._start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
                               "--webui-port", str(self.webui)])
        self.wait_until("the master did not answer", lambda state: state.get("status") == "ALIVE")
        for i, ui in enumerate(self.worker_uis):
            work = self.tmp / f"worker-{i}"
            work.mkdir()
            self._start(f"worker-{i}", ["org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1", "--cores", "1",
                                        "--memory", "1g", "--work-dir", str(work), "--webui-port", str(ui)])

    def wait_for_workers(self) -> None:
        self.wait_until(f"{WORKERS} workers did not register", lambda state: sorted(self.worker_addresses(state)) == sorted(self.worker_ui_urls()))

    def master_state(self) -> dict[str, Any]:
        return get_json(f"http://127.0.0.1:{self.webui}/json/")

    def worker_ui_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{ui}" for ui in self.worker_uis]

    @staticmethod
    def worker_addresses(state: dict[str, Any]) -> list[str]:
        return [w["webuiaddress"] for w in state.get("workers", []) if w["state"] == "ALIVE"]

    def executors(self) -> dict[str, dict[str, str]]:
        """{app id: {executor id: worker web UI}} from each worker's own JSON (running and finished executors: the last
        application's may still be stopping)."""
        out: dict[str, dict[str, str]] = {}
        for ui in self.worker_ui_urls():
            state = get_json(f"{ui}/json/")
            for executor in state["executors"] + state["finishedexecutors"]:
                out.setdefault(executor["appid"], {})[str(executor["id"])] = ui
        return out

    def stop(self) -> list[str]:
        """SIGTERM to every process group (workers first: they take their executors), SIGKILL after 30 s; what was left."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        groups = {proc.pid for proc in self.procs}
        deadline = time.monotonic() + 10  # an executor or Python worker of a worker's group exiting after it
        while (left := group_members(groups)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return [f"{pid}: {command}" for pid, command in left.items()]


def group_members(groups: set[int]) -> dict[int, str]:
    """{pid: command line} of the live (not zombie) processes in the process groups ``groups``."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) in groups and fields[0] != "Z":
                members[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return members


def assert_lake_equals_source(src: Source, container: str, table: str) -> int:
    """The lake table, read by delta-rs straight from Azurite (not by Spark or Hadoop), equals the source."""
    return assert_equal_by_delta_rs(src, container, table, KEYS[table])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    spark_cluster = Cluster(tmp_path_factory.mktemp("standalone"))
    try:
        spark_cluster.start()
        yield spark_cluster
    finally:
        left = spark_cluster.stop()
        assert not left, f"processes left in the cluster's process groups {left} (killed)"


@pytest.fixture(scope="module")
def scenario(cluster: Cluster, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`make dist`; a fresh Azurite container; one source; the job submitter; cleanup of the connector and container."""
    build = subprocess.run(["make", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=600)  # while the workers start
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert WHEEL.exists()
    with fresh_container("cluster") as container:
        yield from _scenario(cluster, scratch_db, tmp_path_factory, container)


def _scenario(cluster: Cluster, scratch_db: str, tmp_path_factory: pytest.TempPathFactory, container: str) -> Any:
    src = Source(scratch_db, f"t_cluster_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("cluster_src"))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(SETUP.format(s=s))
    raw = stream_config(src)
    base = f"wasb://{container}@{ACCOUNT_HOST}"
    raw["lake"]["root"] = f"{base}/lake"
    raw["checkpoints"]["root"] = f"{base}/checkpoints"
    raw["storage"] = {"accounts": {"devstoreaccount1": {"auth": "emulator"}}}
    raw["bulk"].update(partitions=2, min_rows_to_split=1000)  # items in two JDBC ranges: one per executor
    cfg = src.write_config(raw)
    away = src.tmp / "away"
    away.mkdir()
    for job in ("bulk_load", "cdc_stream", "validate"):  # the job files of the same tree as the wheel, alone
        shutil.copy(ROOT / "jobs" / f"{job}.py", away / f"{job}.py")
    events = src.tmp / "events"
    events.mkdir()

    cluster.wait_for_workers()

    def submit(job: str, args: list[str]) -> str:
        """docs/deploy.md's cluster command line (client mode): the job file alone in ``away``, the project from the wheel."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPARK_HOME")}
        env.update(TEST_DB_PASSWORD=PG["password"], PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}", SPARK_LOCAL_DIRS=str(src.tmp))
        command = [
            str(ROOT / ".venv" / "bin" / "spark-submit"), "--master", cluster.url, "--deploy-mode", "client",
            "--properties-file", str(ROOT / "dist" / "spark-submit.conf"), "--py-files", str(WHEEL),
            "--driver-memory", "1g", "--executor-memory", "1g", "--conf", f"spark.driver.host={DRIVER_HOST}",
            "--conf", f"spark.driver.defaultJavaOptions={SHORT_JVM}", "--conf", f"spark.executor.defaultJavaOptions={SHORT_JVM}",
            "--conf", f"spark.pyspark.python={VENV_PYTHON}",  # a Python with the wheel's dependencies, at this path on every node
            "--conf", "spark.scheduler.minRegisteredResourcesRatio=1.0",  # both executors up before the first task
            "--conf", "spark.scheduler.maxRegisteredResourcesWaitingTime=120s",
            "--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={events.as_uri()}",
            "--conf", "spark.eventLog.compress=false", "--conf", "spark.eventLog.rolling.enabled=false",
            f"{job}.py", "--config", str(cfg), "--source", src.name, *args,
        ]
        started = time.monotonic()
        result = subprocess.run(command, cwd=away, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        durations[job] = time.monotonic() - started
        (src.tmp / f"{job}.out").write_text(result.stdout)
        (src.tmp / f"{job}.err").write_text(result.stderr)
        assert result.returncode == 0, f"{job} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        return result.stdout

    durations: dict[str, float] = {}
    try:
        yield src, cfg, base, container, away, events, submit
    finally:
        print(f"\nspark-submit wall times on the standalone cluster: {', '.join(f'{j} {t:.0f} s' for j, t in durations.items())}")
        cleanup(src)


def test_bulk_load_on_the_cluster(scenario: Any) -> None:
    src, _, _, container, away, _, submit = scenario
    probe = subprocess.run([str(VENV_PYTHON), "-c", "import lib.config"], cwd=away, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                           capture_output=True, text=True)
    assert probe.returncode != 0, "the project is importable without the wheel: the test would prove nothing"
    submit("bulk_load", [])
    assert assert_lake_equals_source(src, container, "items") == 2000
    assert assert_lake_equals_source(src, container, "Mixed Case T") == 50
    assert assert_lake_equals_source(src, container, "_marker") == 0
    names = [b.name for b in blobs(container).list_blobs()]
    assert any(n.startswith(f"lake/{src.name}/{src.schema}/Mixed Case T/_delta_log/") for n in names), names[:20]
    assert any(n.startswith("lake/_pipeline/status/_delta_log/") for n in names)
    assert (away / "config" / f"debezium_{src.name}.json").is_file()  # the connector registered; its config under the working directory


def test_stream_applies_real_changes_on_the_cluster(scenario: Any) -> None:
    src, _, _, container, _, _, submit = scenario
    src.execute(CHANGES.format(s=f'"{src.schema}"'))
    wait_until_captured(src, src.name)  # every change above is in Kafka, produced by the real Debezium connector
    submit("cdc_stream", ["--available-now"])
    assert assert_lake_equals_source(src, container, "items") == 2000 - 10 + 1
    assert assert_lake_equals_source(src, container, "Mixed Case T") == 50
    assert assert_lake_equals_source(src, container, "_marker") == 1


def test_validation_on_the_cluster(scenario: Any) -> None:
    src, _, base, container, _, _, submit = scenario
    out = submit("validate", ["--report", f"{base}/reports/validation_{src.name}.json"])
    for table in KEYS:
        assert f"PASS {src.schema}.{table}" in out, out
    blob = blobs(container).get_blob_client(f"reports/validation_{src.name}.json")
    report = json.loads(blob.download_blob().readall())
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] == len(KEYS), report["summary"]


def test_every_job_ran_on_executors_of_both_workers(cluster: Cluster, scenario: Any) -> None:
    """Each job's event log: its tasks ran on executors, and the executors that ran them sit on both workers (the
    workers' own JSON says which executor of which application each worker ran)."""
    *_, events, _ = scenario
    on_worker = cluster.executors()
    logs = sorted(events.iterdir())
    assert len(logs) == 3, [p.name for p in logs]
    apps = []
    for log in logs:
        app_id, name, tasks = "", "", {}
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["Event"] == "SparkListenerApplicationStart":
                app_id, name = event["App ID"], event["App Name"]
            elif event["Event"] == "SparkListenerTaskEnd" and event["Task End Reason"]["Reason"] == "Success":
                executor = event["Task Info"]["Executor ID"]
                tasks[executor] = tasks.get(executor, 0) + 1
        assert app_id in on_worker, f"{name}: no worker ran an executor of {app_id}: {on_worker}"
        assert "driver" not in tasks, f"{name}: tasks ran in the driver: {tasks}"
        workers = {on_worker[app_id][e] for e in tasks}
        assert workers == set(cluster.worker_ui_urls()), f"{name} ({app_id}): successful tasks per executor {tasks}, executors' workers {on_worker[app_id]}"
        apps.append(app_id)
    cluster.wait_until("the master did not list every application FINISHED",  # it may still be closing the last one
                  lambda state: {a["id"]: a["state"] for a in state["completedapps"] if a["id"] in apps} == dict.fromkeys(apps, "FINISHED"), 30)


def test_the_driver_address_given_to_spark_submit_is_kept(scenario: Any) -> None:
    """On a cluster the executors connect to the driver at ``spark.driver.host``; a job must keep what spark-submit was given
    (also its memory and shuffle width). Every process here is on one machine, so the jobs above would pass with a loopback
    address too: this reads what each driver advertised."""
    *_, events, _ = scenario
    advertised = {}
    for log in sorted(events.iterdir()):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["Event"] == "SparkListenerEnvironmentUpdate":
                props = dict(event["Spark Properties"])
                advertised[log.name] = (props["spark.driver.host"], props.get("spark.driver.memory"), props.get("spark.sql.shuffle.partitions"))
                break
    assert len(advertised) >= 3, f"event logs of the bulk load, stream and validation expected: {sorted(advertised)}"
    assert set(advertised.values()) == {(DRIVER_HOST, "1g", None)}, advertised  # --driver-memory 1g; the cluster's shuffle width
