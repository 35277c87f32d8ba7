"""The kafka section: validation at load, the one translation to every client, error classification."""

import copy

import pytest

from lib.config import parse_config
from lib.config.envsubst import Lookups, Unreadable
from lib.config.model import KafkaConfig, OAuthBearer
from lib.errors import ConfigError
from lib.kafka.connection_check import classify, failure_message
from lib.kafka.settings import (
    DATABRICKS_SHADE_PREFIX,
    class_prefix_for,
    jaas_config,
    java_client_properties,
    librdkafka_settings,
    schema_history_properties,
    spark_kafka_options,
)

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
FILES = {"/tls/ca.pem": CA, "/tls/client.pem": CA, "/tls/client.key": KEY, "/tls/notes.txt": "hello"}
BASE = {
    "kafka": {"bootstrap_servers": "broker:9094"},
    "sources": {"shop": {"type": "postgres", "schemas": ["public"], "cdc": {"topic_prefix": "shop"},
                         "connection": {"host": "h", "database": "d", "user": "u", "password": "${DB_PW}"}}},
}
ENV = {"DB_PW": "db-secret", "KAFKA_PASSWORD": "kafka-secret-1"}
SCRAM = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "lakehouse",
         "sasl_password": "${KAFKA_PASSWORD}", "ssl_ca_location": "/tls/ca.pem"}


def _read(path: str) -> str:
    if path not in FILES:
        raise Unreadable("cannot read the file: No such file or directory")
    return FILES[path]


def load(kafka: dict, cdc: dict | None = None):
    raw = copy.deepcopy(BASE)
    raw["kafka"].update(kafka)
    raw["sources"]["shop"]["cdc"].update(cdc or {})
    return parse_config(raw, ENV, Lookups(read_file=_read, read_secret=lambda s, k: ""))


def error(kafka: dict, cdc: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(kafka, cdc)
    return str(info.value)


def test_scram_over_tls_is_read_with_the_pem_and_the_password_variable():
    cfg = load(SCRAM)
    kafka = cfg.kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism, kafka.sasl_username) == ("SASL_SSL", "SCRAM-SHA-512", "lakehouse")
    assert kafka.sasl_password == "kafka-secret-1" and kafka.sasl_password_env == "KAFKA_PASSWORD"
    assert kafka.ssl_ca_pem == CA
    assert cfg.source("shop").cdc.kafka == kafka  # the connector config builders see the same section
    assert "kafka-secret-1" in cfg.secrets()
    assert "kafka-secret-1" not in repr(cfg) and "MIIB" not in repr(kafka)


def test_plaintext_is_the_default():
    kafka = load({}).kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism, kafka.ssl_ca_pem) == ("PLAINTEXT", None, None)
    assert librdkafka_settings(kafka) == {"bootstrap.servers": "broker:9094", "security.protocol": "plaintext"}


@pytest.mark.parametrize(("kafka", "expected"), [
    ({"security_protocol": "SASL_TLS"}, "kafka.security_protocol: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ({"security_protocol": "SSL", "sasl_mechanism": "PLAIN"}, "kafka.sasl_mechanism: needs security_protocol SASL_SSL or SASL_PLAINTEXT"),
    ({"security_protocol": "SASL_SSL"}, "kafka.sasl_mechanism: is required"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-1"}, "kafka.sasl_mechanism: expected one of PLAIN, SCRAM-SHA-256"),
    ({**SCRAM, "sasl_password": None}, "kafka.sasl_password: is required"),
    ({**SCRAM, "sasl_username": None}, "kafka.sasl_username: is required"),
    ({**SCRAM, "ssl_ca_location": "/tls/missing.pem"}, "kafka.ssl_ca_location: /tls/missing.pem: cannot read the file: No such file"),
    ({**SCRAM, "ssl_ca_location": "/tls/notes.txt"}, "kafka.ssl_ca_location: /tls/notes.txt holds no PEM certificate"),
    ({"ssl_ca_location": "/tls/ca.pem"}, "kafka.ssl_ca_location: needs security_protocol SSL or SASL_SSL (security_protocol is PLAINTEXT)"),
    ({"security_protocol": "SSL", "ssl_certificate_location": "/tls/client.pem"}, "kafka.ssl_key_location: is required: a client certificate (mTLS)"),
    ({"security_protocol": "SSL", "ssl_certificate_location": "/tls/client.pem", "ssl_key_location": "/tls/ca.pem"},
     "kafka.ssl_key_location: /tls/ca.pem holds no PEM private key"),
    ({**SCRAM, "sasl_mechanism": "OAUTHBEARER"}, "kafka.sasl_username: applies to sasl_mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}, "kafka.oauthbearer: is required"),
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER", "oauthbearer": {"token_endpoint_url": "https://t", "client_id": "c"}},
     "kafka.oauthbearer.client_secret: is required"),
    ({**SCRAM, "properties": {"sasl.jaas.config": "x"}}, "kafka.properties.sasl.jaas.config: set it with kafka.sasl_username / sasl_password"),
    ({**SCRAM, "sasl_usename": "typo"}, "kafka.sasl_usename: unknown key"),
])
def test_bad_settings_are_config_errors_naming_the_key(kafka, expected):
    message = error({k: v for k, v in kafka.items() if v is not None})
    assert expected in message
    assert "kafka-secret-1" not in message


def test_scram_translates_to_librdkafka_and_to_spark_with_the_scram_login_module():
    kafka = load(SCRAM).kafka
    assert librdkafka_settings(kafka) == {
        "bootstrap.servers": "broker:9094", "security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "lakehouse", "sasl.password": "kafka-secret-1", "ssl.ca.location": "/tls/ca.pem",
    }
    spark = spark_kafka_options(kafka)
    assert spark["kafka.bootstrap.servers"] == "broker:9094" and spark["kafka.security.protocol"] == "SASL_SSL"
    assert spark["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert spark["kafka.sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                               'username="lakehouse" password="kafka-secret-1";')
    # the CA travels inline: an executor on another machine needs no copy of the file
    assert (spark["kafka.ssl.truststore.type"], spark["kafka.ssl.truststore.certificates"]) == ("PEM", CA)


def test_plain_for_event_hubs_escapes_the_connection_string_and_databricks_gets_the_shaded_module():
    conn = 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a"b\\c='
    kafka = KafkaConfig(bootstrap_servers="ns.servicebus.windows.net:9093", security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                        sasl_username="$ConnectionString", sasl_password=conn)
    line = jaas_config(kafka, DATABRICKS_SHADE_PREFIX)
    assert line.startswith("kafkashaded.org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert 'username="$ConnectionString"' in line and 'SharedAccessKey=a\\"b\\\\c="' in line
    assert class_prefix_for({"DATABRICKS_RUNTIME_VERSION": "17.3"}) == DATABRICKS_SHADE_PREFIX
    assert class_prefix_for({}) == ""


def test_oauthbearer_uses_oidc_client_credentials_on_both_clients():
    oauth = OAuthBearer("https://login.microsoftonline.com/t/oauth2/v2.0/token", "app-id", "app-secret", "https://ns.servicebus.windows.net/.default")
    kafka = KafkaConfig(bootstrap_servers="ns.servicebus.windows.net:9093", security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", oauthbearer=oauth)
    assert librdkafka_settings(kafka) == {
        "bootstrap.servers": "ns.servicebus.windows.net:9093", "security.protocol": "sasl_ssl", "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc", "sasl.oauthbearer.token.endpoint.url": oauth.token_endpoint_url,
        "sasl.oauthbearer.client.id": "app-id", "sasl.oauthbearer.client.secret": "app-secret",
        "sasl.oauthbearer.scope": "https://ns.servicebus.windows.net/.default",
    }
    java = java_client_properties(kafka)
    assert java["sasl.oauthbearer.token.endpoint.url"] == oauth.token_endpoint_url
    assert java["sasl.login.callback.handler.class"] == "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
    assert java["sasl.jaas.config"] == ('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required '
                                        'clientId="app-id" clientSecret="app-secret" scope="https://ns.servicebus.windows.net/.default";')
    assert "app-secret" in kafka.secrets()


def test_mtls_gives_locations_to_librdkafka_and_inline_pem_to_java_and_properties_reach_both():
    kafka = load({"security_protocol": "SSL", "ssl_ca_location": "/tls/ca.pem", "ssl_certificate_location": "/tls/client.pem",
                  "ssl_key_location": "/tls/client.key", "properties": {"client.rack": "use1-az1"}}).kafka
    rd = librdkafka_settings(kafka)
    assert (rd["ssl.certificate.location"], rd["ssl.key.location"], rd["client.rack"]) == ("/tls/client.pem", "/tls/client.key", "use1-az1")
    java = java_client_properties(kafka)
    assert (java["ssl.keystore.type"], java["ssl.keystore.certificate.chain"], java["ssl.keystore.key"]) == ("PEM", CA, KEY)
    assert java["client.rack"] == "use1-az1" and "sasl.jaas.config" not in java
    assert KEY in kafka.secrets()


def test_schema_history_references_the_password_and_refuses_a_literal_one():
    props = schema_history_properties(load(SCRAM).kafka)
    assert props["schema.history.internal.kafka.bootstrap.servers"] == "broker:9094"
    for side in ("producer", "consumer"):
        assert props[f"schema.history.internal.{side}.security.protocol"] == "SASL_SSL"
        assert props[f"schema.history.internal.{side}.sasl.jaas.config"].endswith('password="${env:KAFKA_PASSWORD}";')
    assert not any("kafka-secret-1" in v for v in props.values())
    literal = load({**SCRAM, "sasl_password": "kafka-secret-1"}).kafka
    with pytest.raises(ConfigError, match=r"kafka.sasl_password: .*give the password as \$\{VAR\}"):
        schema_history_properties(literal)
    assert schema_history_properties(load({}).kafka) == {"schema.history.internal.kafka.bootstrap.servers": "broker:9094"}


# Error texts as the clients print them: librdkafka 2.x (confluent_kafka) and the Java client 3.9 (Spark).
@pytest.mark.parametrize(("text", "kind"), [
    ("SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism "
     "SCRAM-SHA-512 (after 3ms in state AUTH_REQ)", "authentication"),
    ("org.apache.kafka.common.errors.SaslAuthenticationException: Authentication failed during authentication due to invalid "
     "credentials with SASL mechanism SCRAM-SHA-512", "authentication"),
    ("127.0.0.1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate "
     "could not be verified, verify that ssl.ca.location is correctly configured (after 4ms in state SSL_HANDSHAKE)", "certificate"),
    ("javax.net.ssl.SSLHandshakeException: PKIX path building failed: unable to find valid certification path", "certificate"),
    ("127.0.0.1:9094/bootstrap: SASL SCRAM-SHA-256 mechanism handshake failed: Broker: Unsupported SASL mechanism: broker's "
     "supported mechanisms: SCRAM-SHA-512 (after 2ms in state AUTH_HANDSHAKE)", "mechanism"),
    ("org.apache.kafka.common.errors.UnsupportedSaslMechanismException: Client SASL mechanism 'SCRAM-SHA-256' not enabled in the "
     "server, enabled mechanisms are [SCRAM-SHA-512]", "mechanism"),
    ("127.0.0.1:9094/bootstrap: Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol", "tls"),
])
def test_client_error_texts_are_classified(text, kind):
    assert classify(text)[0] == kind


def test_an_unclassified_failure_reads_as_unreachable_with_the_wait():
    assert classify("Failed to get metadata: Local: Broker transport failure") is None
    kind, message = failure_message("b:9094", "SASL_SSL", ["Failed to get metadata: Local: Broker transport failure"], 30)
    assert kind == "unreachable" and message.startswith("Kafka at b:9094 (SASL_SSL) did not answer within 30s")
    kind, message = failure_message("b:9094", "SASL_SSL", ["timeout", "SASL authentication error: Authentication failed"], 2)
    assert kind == "authentication" and "check kafka.sasl_username and kafka.sasl_password" in message
