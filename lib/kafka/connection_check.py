"""Fail fast and say why when Kafka refuses the configured security settings.

A Kafka client that cannot authenticate retries forever and logs the reason; a job would hang. The stream
checks the connection once at start (:func:`check_connection`, a thin layer over confluent_kafka) and
stops within the timeout with an error that names the cause: authentication, certificate or mechanism.
:func:`classify` reads librdkafka's and the Java client's error texts (pure, unit-tested on both).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from lib.errors import PipelineError

# (kind, phrases in librdkafka's or the Java client's error text, what to check): the first match wins.
_KINDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("mechanism", ("unsupported sasl mechanism", "unsupportedsaslmechanism", "not enabled in the server"),
     "the broker does not offer kafka.sasl_mechanism; set the mechanism it offers"),
    ("authentication", ("authentication failed", "saslauthenticationexception", "invalid credentials", "invalid username or password",
                        "sasl authentication error"),
     "the broker refused the credentials; check kafka.sasl_username and kafka.sasl_password (or kafka.oauthbearer)"),
    ("certificate", ("certificate verify failed", "pkix path", "sslhandshakeexception", "unable to get local issuer certificate",
                     "self-signed certificate", "self signed certificate", "broker certificate could not be verified"),
     "the broker's certificate is not trusted; set kafka.ssl_ca_location to the CA that signed it"),
    ("tls", ("ssl handshake failed", "sslexception", "wrong version number", "disconnected while requesting apiversion",
             "connection setup timed out in state ssl_handshake"),
     "no TLS handshake with the broker; check kafka.security_protocol (SSL/SASL_SSL against a TLS listener, "
     "PLAINTEXT/SASL_PLAINTEXT against a plain one) and the port"),
)


class KafkaConnectionError(PipelineError):
    """Kafka refused or never answered the configured connection. ``kind``: authentication, certificate,
    mechanism, tls, or unreachable."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


def classify(text: str) -> tuple[str, str] | None:
    """(kind, what to check) for an error text of a Kafka client, or None when it names no known cause."""
    lowered = text.lower()
    for kind, phrases, hint in _KINDS:
        if any(phrase in lowered for phrase in phrases):
            return kind, hint
    return None


def failure_message(bootstrap_servers: str, security_protocol: str, errors: list[str], waited: float) -> tuple[str, str]:
    """(kind, message) for the errors a client saw while connecting (pure)."""
    for text in errors:
        found = classify(text)
        if found is not None:
            kind, hint = found
            return kind, f"Kafka at {bootstrap_servers} ({security_protocol}): {kind} failed: {hint} (client said: {text})"
    seen = f" (client said: {errors[-1]})" if errors else ""
    return "unreachable", f"Kafka at {bootstrap_servers} ({security_protocol}) did not answer within {waited:g}s{seen}"


class _Recorder(logging.Logger):
    """librdkafka's log lines (a refused login is logged as FAIL), kept instead of printed to stderr."""

    def __init__(self, errors: list[str], lock: threading.Lock) -> None:
        super().__init__("kafka.connection_check")
        self._errors, self._lock = errors, lock

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:  # type: ignore[override]
        if level >= logging.WARNING:
            with self._lock:
                self._errors.append(str(msg) % args if args else str(msg))


def check_connection(settings: Mapping[str, Any], timeout_seconds: float = 30.0) -> None:
    """Return once the cluster's metadata is readable with ``settings`` (lib/kafka/settings.py); raise
    :class:`KafkaConnectionError` as soon as the client reports a security failure, or at the timeout."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[str] = []
    lock = threading.Lock()

    def on_error(err: Any) -> None:
        with lock:
            errors.append(str(err.str() if hasattr(err, "str") else err))

    client = AdminClient({**settings, "error_cb": on_error, "logger": _Recorder(errors, lock),
                          "socket.connection.setup.timeout.ms": int(min(timeout_seconds, 30) * 1000)})
    started = time.monotonic()
    while True:
        try:
            client.list_topics(timeout=1.0)
            return
        except KafkaException as exc:
            with lock:
                errors.append(str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc))
        client.poll(0)  # serves the error and log callbacks: librdkafka reports the SASL and TLS failures there
        waited = time.monotonic() - started
        with lock:
            seen = list(errors)
        if any(classify(text) for text in seen) or waited >= timeout_seconds:
            kind, message = failure_message(str(settings.get("bootstrap.servers")), str(settings.get("security.protocol", "plaintext")).upper(),
                                            seen, round(waited))
            raise KafkaConnectionError(kind, message)
