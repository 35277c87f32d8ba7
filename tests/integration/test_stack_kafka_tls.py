"""The local stack's SASL_SSL listener (scripts/stack/kafka.sh, docs/local-stack.md): SCRAM-SHA-512 over TLS
on 127.0.0.1:9094 (KAFKA_SASL_PORT), its certificate signed by the stack's own CA (.stack/kafka/tls/ca.pem).

A message produced through it is read back through it and through the plaintext listener; a wrong password,
an untrusted CA and a mechanism other than SCRAM-SHA-512 are refused. Each refusal must come fast: the
clients record librdkafka's errors with an error_cb and the test waits for the first one (short metadata
requests in between, never a fixed sleep).

Needs the local stack (`make up`).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = Path(os.environ.get("STACK_DIR", ROOT / ".stack"))
CA = STACK_DIR / "kafka" / "tls" / "ca.pem"
PLAIN_BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
SASL_BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_SASL_PORT', '9094')}"
USER = os.environ.get("KAFKA_SASL_USER", "lakehouse")
PASSWORD = os.environ.get("KAFKA_SASL_PASSWORD", "lakehouse-secret")
FAIL_FAST_SECONDS = 5.0  # a refused client must have said why within this long


@pytest.fixture(scope="module")
def ca() -> str:
    assert CA.is_file(), f"{CA} missing: start the local stack (make up)"
    return str(CA)


def sasl_conf(ca: str | None, **overrides: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": SASL_BOOTSTRAP,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": USER,
        "sasl.password": PASSWORD,
        "log_level": 0,  # the errors are recorded through error_cb, not logged
    }
    if ca is not None:
        conf["ssl.ca.location"] = ca
    return {**conf, **overrides}


def first_error(conf: dict[str, Any], timeout: float = FAIL_FAST_SECONDS) -> tuple[KafkaError, float]:
    """The first error (other than the "brokers are down" summary) a client with ``conf`` reports, and
    how long it took. Fails the test when the client gets metadata instead, or no error comes in time."""
    errors: list[KafkaError] = []
    admin = AdminClient({**conf, "error_cb": errors.append})
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            metadata = admin.list_topics(timeout=0.2)
        except KafkaException:
            pass
        else:
            pytest.fail(f"the client was let in: {metadata.brokers}")
        admin.poll(0)  # serves error_cb
        found = [e for e in errors if e.code() != KafkaError._ALL_BROKERS_DOWN]
        if found:
            return found[0], time.monotonic() - t0
    pytest.fail(f"no error within {timeout}s (recorded: {[e.str() for e in errors]})")


def read_one(conf: dict[str, Any], topic: str, timeout: float = 30.0) -> Message:
    """The first message of partition 0 of ``topic``, read with ``conf`` (no consumer group rebalance)."""
    errors: list[KafkaError] = []
    consumer = Consumer({**conf, "group.id": f"tls-test-{uuid.uuid4().hex}", "enable.auto.commit": False, "error_cb": errors.append})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            return msg
        pytest.fail(f"nothing read from {topic} on {conf['bootstrap.servers']} within {timeout}s (errors: {[e.str() for e in errors]})")
    finally:
        consumer.close()


def test_produce_and_consume_over_sasl_ssl(ca: str) -> None:
    conf = sasl_conf(ca)
    topic = f"tls-test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)

    delivered: list[Any] = []
    producer = Producer(conf)
    producer.produce(topic, key=b"k", value=b"over SASL_SSL", on_delivery=lambda err, msg: delivered.append((err, msg)))
    assert producer.flush(30) == 0, "message not delivered within 30 s"
    assert len(delivered) == 1 and delivered[0][0] is None, delivered

    over_tls = read_one(conf, topic)
    assert (over_tls.key(), over_tls.value()) == (b"k", b"over SASL_SSL")
    plain = read_one({"bootstrap.servers": PLAIN_BOOTSTRAP, "log_level": 0}, topic)
    assert (plain.key(), plain.value(), plain.offset()) == (b"k", b"over SASL_SSL", over_tls.offset())


def test_wrong_password_is_an_authentication_error(ca: str) -> None:
    err, seconds = first_error(sasl_conf(ca, **{"sasl.password": "not-" + PASSWORD}))
    assert err.code() == KafkaError._AUTHENTICATION, err.str()
    assert "SASL authentication error: Authentication failed" in err.str(), err.str()
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in err.str(), err.str()
    assert seconds < FAIL_FAST_SECONDS


@pytest.fixture
def other_ca(tmp_path: Path) -> str:
    """A freshly generated CA that signed nothing the broker serves."""
    pem = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "other-ca.key"),
                    "-out", str(pem), "-subj", "/CN=not the stack's CA", "-days", "1"], check=True, capture_output=True)
    return str(pem)


@pytest.mark.parametrize("trust", ["system CAs only", "another CA"])
def test_untrusted_ca_is_a_certificate_error(trust: str, other_ca: str) -> None:
    err, seconds = first_error(sasl_conf(None if trust == "system CAs only" else other_ca))
    # librdkafka says it in one of two ways, by timing: _SSL "SSL handshake failed: error:0A000086:SSL routines::certificate
    # verify failed: broker certificate could not be verified, ..." when a later handshake step finds it, _TRANSPORT with
    # OpenSSL's bare "error:0A000086:SSL routines::certificate verify failed" when its first SSL_connect call already does.
    assert err.code() in (KafkaError._SSL, KafkaError._TRANSPORT), err.str()
    assert "SSL routines::certificate verify failed" in err.str(), err.str()
    assert "in state SSL_HANDSHAKE" in err.str(), err.str()
    assert seconds < FAIL_FAST_SECONDS


def test_scram_sha_256_is_an_unsupported_mechanism(ca: str) -> None:
    err, seconds = first_error(sasl_conf(ca, **{"sasl.mechanism": "SCRAM-SHA-256"}))
    assert err.code() == KafkaError._AUTHENTICATION, err.str()
    assert "SASL SCRAM-SHA-256 mechanism handshake failed" in err.str(), err.str()
    assert "Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-512" in err.str(), err.str()
    assert seconds < FAIL_FAST_SECONDS
