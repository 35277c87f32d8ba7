"""The pipeline against a secured Kafka: TLS + SASL/SCRAM-SHA-512 on the local stack's 127.0.0.1:9094.

A source is bulk-loaded with its connector registered through Kafka Connect's REST API behind https and
basic authentication (a small reverse proxy in front of the stack's Connect, with its own CA); then the
CDC stream job reads the secured listener, once by the direct path and once by Spark's Kafka source, and
every lake table equals its source. A wrong password, an untrusted CA and a mechanism the broker does not
offer each stop the job within a minute with exit 1, a message naming the cause, and no secret printed.
Needs the local stack (`make up`).
"""

from __future__ import annotations

import base64
import http.server
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.debezium.connect_client import ConnectClient
from lib.errors import SourceError

from .compare import assert_lake_equals_source
from .conftest import ROOT, Source, job_env
from .kafka_events import wait_until_captured
from .test_cdc_decode import CONNECT, cleanup

SECURE = "127.0.0.1:9094"
STACK_CA = ROOT / ".stack" / "kafka" / "tls" / "ca.pem"
KAFKA_PASSWORD = "lakehouse-secret"  # the local stack's SCRAM user (docs/local-stack.md)
CONNECT_USER, CONNECT_PASSWORD = "pipeline", "connect-pw-7f3a"

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), tags text[]);
INSERT INTO {s}.items SELECT g, 'item ' || g, g % 7, g * 1.25, ARRAY['t' || g % 3] FROM generate_series(1, 500) g;
CREATE TABLE {s}."Order Lines" ("LineId" int PRIMARY KEY, "Note" text);
INSERT INTO {s}."Order Lines" SELECT g, 'n' || g FROM generate_series(1, 40) g;
"""
CHANGES = """
UPDATE {s}.items SET qty = qty + 100, tags = ARRAY['changed'] WHERE id % 25 = {k};
DELETE FROM {s}.items WHERE id BETWEEN {k}0 AND {k}4;
INSERT INTO {s}.items VALUES (100{k}, 'new {k}', 1, 9.99, NULL);
UPDATE {s}."Order Lines" SET "Note" = 'round {k}' WHERE "LineId" <= 5;
"""


def make_ca(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key): a fresh CA and a server certificate it signs for 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / f"{name}-{part}" for part in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", f"/CN={name} test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = directory / f"{name}-san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return ca, cert, key


class _ConnectProxy(http.server.BaseHTTPRequestHandler):
    """https + basic authentication in front of the stack's plain Kafka Connect REST API."""

    expected = "Basic " + base64.b64encode(f"{CONNECT_USER}:{CONNECT_PASSWORD}".encode()).decode()
    seen: ClassVar[list[tuple[str, str]]] = []

    def _forward(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="connect"')
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        request = urllib.request.Request(CONNECT + self.path, data=body, method=self.command, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        self.seen.append((self.command, self.path))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = _forward

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def connect_https(tmp_path_factory: pytest.TempPathFactory) -> Any:
    ca, cert, key = make_ca(tmp_path_factory.mktemp("connect_tls"), "connect")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ConnectProxy)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", ca
    server.shutdown()


def secured_config(src: Source, connect_url: str, connect_ca: Path, **kafka: Any) -> dict[str, Any]:
    raw = src.config_dict()
    raw["sources"][src.name]["cdc"].update(
        topic_prefix=src.name, password_reference="${env:SHOP_DB_PASSWORD}", connect_url=connect_url,
        connect_username=CONNECT_USER, connect_password="${TEST_CONNECT_PASSWORD}", connect_ca_location=str(connect_ca),
    )
    raw["kafka"] = {"bootstrap_servers": SECURE, "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_username": "lakehouse", "sasl_password": "${TEST_KAFKA_PASSWORD}", "ssl_ca_location": str(STACK_CA), **kafka}
    raw["stream"] = {"retry_backoff_seconds": 0.2, "apply_threads": 2}
    return raw


def secret_env() -> dict[str, str]:
    return {**job_env(), "TEST_KAFKA_PASSWORD": KAFKA_PASSWORD, "TEST_CONNECT_PASSWORD": CONNECT_PASSWORD}


def load(src: Source, raw: dict[str, Any]) -> Any:
    from lib.config import load_config

    return load_config(src.write_config(raw), env=secret_env())


def run_stream_job(src: Source, raw: dict[str, Any], timeout: float = 300) -> tuple[int, str, float]:
    path = src.tmp / f"stream-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(raw))
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "jobs" / "cdc_stream.py"), "--config", str(path), "--source", src.name, "--available-now"],
                          env=secret_env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def secured(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory, connect_https: Any) -> Any:
    if not STACK_CA.exists():
        pytest.fail(f"{STACK_CA} is missing: `make up` serves the SASL_SSL listener and writes its CA there")
    src = Source(scratch_db, f"t_kafka_sasl_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("kafka_sasl"))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(SETUP.format(s=s))
    url, ca = connect_https
    raw = secured_config(src, url, ca)
    try:
        config = load(src, raw)
        _ConnectProxy.seen.clear()
        assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
        yield src, raw, list(_ConnectProxy.seen)
    finally:
        cleanup(src)


def test_the_connector_is_registered_through_https_with_basic_authentication(secured: Any) -> None:
    src, raw, calls = secured
    assert any(method == "PUT" and path.startswith(f"/connectors/lakehouse-{src.name}/config") for method, path in calls), calls
    cdc = load(src, raw).source(src.name).cdc
    assert ConnectClient.for_cdc(cdc).status(cdc.connector_name)["connector"]["state"] == "RUNNING"


@pytest.mark.parametrize("reader", ["direct", "spark"])
def test_the_stream_reads_the_secured_listener_and_the_lake_equals_the_source(spark: Any, secured: Any, reader: str) -> None:
    src, raw, _ = secured
    src.execute(CHANGES.format(s=f'"{src.schema}"', k=1 if reader == "direct" else 2))
    wait_until_captured(src, src.name)
    raw = {**raw, "stream": {**raw["stream"], "event_reader": reader}}
    code, output, _ = run_stream_job(src, raw)
    assert code == 0, output[-3000:]
    assert "kafka: connected to 127.0.0.1:9094 (SASL_SSL, SCRAM-SHA-512)" in output
    if reader == "direct":
        assert "; by direct" in output and "by spark" not in output
    else:
        assert "; by spark" in output and "; by direct" not in output
    assert KAFKA_PASSWORD not in output and CONNECT_PASSWORD not in output
    assert assert_lake_equals_source(spark, src, "items") == src.query(f'SELECT count(*) FROM "{src.schema}".items')[0][0]
    assert assert_lake_equals_source(spark, src, "Order Lines") == 40


@pytest.mark.parametrize(("change", "cause"), [
    ({"sasl_password": "not-the-password"}, "authentication failed: the broker refused the credentials"),
    ({"ssl_ca_location": "OTHER_CA"}, "certificate failed: the broker's certificate is not trusted"),
    ({"sasl_mechanism": "SCRAM-SHA-256"}, "mechanism failed: the broker does not offer kafka.sasl_mechanism"),
])
def test_a_refused_connection_stops_the_job_within_a_minute_naming_the_cause(source: Source, connect_https: Any, tmp_path: Path,
                                                                              change: dict[str, str], cause: str) -> None:
    url, connect_ca = connect_https
    if change.get("ssl_ca_location") == "OTHER_CA":
        change = {"ssl_ca_location": str(make_ca(tmp_path / "other", "untrusted")[0])}
    code, output, took = run_stream_job(source, secured_config(source, url, connect_ca, **change), timeout=120)
    assert code == 1, output[-3000:]
    assert f"Kafka at {SECURE} (SASL_SSL): {cause}" in output, output[-3000:]
    assert took < 60
    assert KAFKA_PASSWORD not in output and "not-the-password" not in output and CONNECT_PASSWORD not in output


def test_connect_rest_names_a_wrong_password_and_an_untrusted_certificate(connect_https: Any) -> None:
    url, ca = connect_https
    assert isinstance(ConnectClient(url, 10, CONNECT_USER, CONNECT_PASSWORD, str(ca))._call("GET", "/connector-plugins")[1], list)
    with pytest.raises(SourceError, match=r"refused the request \(HTTP 401\): check cdc.connect_username and cdc.connect_password") as info:
        ConnectClient(url, 10, CONNECT_USER, "wrong", str(ca)).status("x")
    assert CONNECT_PASSWORD not in str(info.value)
    with pytest.raises(SourceError, match=r"its certificate is not trusted .*set cdc.connect_ca_location"):
        ConnectClient(url, 10, CONNECT_USER, CONNECT_PASSWORD).status("x")
