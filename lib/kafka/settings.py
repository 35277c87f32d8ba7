"""The one translation of the ``kafka`` config section into client settings.

Pure functions. Every Kafka client the jobs open takes its settings from here:

- :func:`librdkafka_settings`: the Python clients (confluent_kafka: range reader, offsets, heartbeats,
  direct-path workers);
- :func:`java_client_properties`: Java clients: Spark's Kafka source through :func:`spark_kafka_options`,
  the Debezium connectors' schema-history producer and consumer through :func:`schema_history_properties`.

The Java side gets the PEM contents inline (``ssl.truststore.certificates``, ``ssl.keystore.key``), so
Spark executors on other machines need no copy of the files. ``kafka.properties`` goes as-is to both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lib.config.model import KafkaConfig
from lib.errors import ConfigError

# Databricks runtimes shade the Kafka client: its classes live under this prefix there.
DATABRICKS_SHADE_PREFIX = "kafkashaded."
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "OAUTHBEARER": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule",
}
# Kafka clients 3.4+: fetches tokens from sasl.oauthbearer.token.endpoint.url by OIDC client credentials.
_OIDC_CALLBACK_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"


def librdkafka_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """Settings for a confluent_kafka client (add ``group.id`` and the like at the call site)."""
    settings: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap_servers, "security.protocol": kafka.security_protocol.lower()}
    if kafka.sasl_mechanism:
        settings["sasl.mechanism"] = kafka.sasl_mechanism
    if kafka.sasl_username is not None:
        settings["sasl.username"] = kafka.sasl_username
        settings["sasl.password"] = kafka.sasl_password or ""
    if kafka.oauthbearer is not None:
        oauth = kafka.oauthbearer
        settings.update({
            "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.token.endpoint.url": oauth.token_endpoint_url,
            "sasl.oauthbearer.client.id": oauth.client_id,
            "sasl.oauthbearer.client.secret": oauth.client_secret,
        })
        if oauth.scope:
            settings["sasl.oauthbearer.scope"] = oauth.scope
    for key, value in (("ssl.ca.location", kafka.ssl_ca_location), ("ssl.certificate.location", kafka.ssl_certificate_location),
                       ("ssl.key.location", kafka.ssl_key_location), ("ssl.key.password", kafka.ssl_key_password)):
        if value is not None:
            settings[key] = value
    settings.update(dict(kafka.properties))
    return settings


def java_client_properties(kafka: KafkaConfig, class_prefix: str = "") -> dict[str, str]:
    """Properties of a Java Kafka client. ``class_prefix`` is :data:`DATABRICKS_SHADE_PREFIX` on Databricks."""
    props = {"bootstrap.servers": kafka.bootstrap_servers, "security.protocol": kafka.security_protocol}
    if kafka.sasl_mechanism:
        props["sasl.mechanism"] = kafka.sasl_mechanism
        props["sasl.jaas.config"] = jaas_config(kafka, class_prefix)
    if kafka.oauthbearer is not None:
        props["sasl.oauthbearer.token.endpoint.url"] = kafka.oauthbearer.token_endpoint_url
        props["sasl.login.callback.handler.class"] = class_prefix + _OIDC_CALLBACK_HANDLER
    if kafka.ssl_ca_pem is not None:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.certificates"] = kafka.ssl_ca_pem
    if kafka.ssl_key_pem is not None and kafka.ssl_certificate_pem is not None:
        props["ssl.keystore.type"] = "PEM"
        props["ssl.keystore.certificate.chain"] = kafka.ssl_certificate_pem
        props["ssl.keystore.key"] = kafka.ssl_key_pem
        if kafka.ssl_key_password is not None:
            props["ssl.key.password"] = kafka.ssl_key_password
    props.update(dict(kafka.properties))
    return props


def jaas_config(kafka: KafkaConfig, class_prefix: str = "") -> str:
    """The ``sasl.jaas.config`` line of the configured mechanism (values quoted and escaped)."""
    assert kafka.sasl_mechanism is not None
    options: list[tuple[str, str]]
    if kafka.oauthbearer is not None:
        oauth = kafka.oauthbearer
        options = [("clientId", oauth.client_id), ("clientSecret", oauth.client_secret)]
        if oauth.scope:
            options.append(("scope", oauth.scope))
    else:
        options = [("username", kafka.sasl_username or ""), ("password", kafka.sasl_password or "")]
    rendered = " ".join(f'{name}="{_jaas_escape(value)}"' for name, value in options)
    return f"{class_prefix}{_LOGIN_MODULES[kafka.sasl_mechanism]} required {rendered};"


def spark_kafka_options(kafka: KafkaConfig, class_prefix: str = "") -> dict[str, str]:
    """Options of Spark's Kafka source: the Java client properties, each prefixed ``kafka.``."""
    return {f"kafka.{key}": value for key, value in java_client_properties(kafka, class_prefix).items()}


def schema_history_properties(kafka: KafkaConfig) -> dict[str, str]:
    """Debezium's ``schema.history.internal.*`` connection (Oracle, SQL Server): its producer and consumer
    run in the Kafka Connect worker, whose Kafka client is not shaded.

    A connector config is sent to Kafka Connect and stored there, so it never holds a secret: the SASL
    password goes in as the config-provider reference ``${env:VAR}`` (``sasl_password: ${VAR}`` in the
    YAML; the worker needs Kafka Connect's EnvVarConfigProvider, as for the database password). OAUTHBEARER
    and client certificates would put a secret into it, so they are refused with the key to change.
    """
    props = {"schema.history.internal.kafka.bootstrap.servers": kafka.bootstrap_servers}
    if kafka.security_protocol == "PLAINTEXT" and not kafka.properties:
        return props
    if kafka.oauthbearer is not None or kafka.ssl_key_pem is not None:
        key = "kafka.oauthbearer" if kafka.oauthbearer is not None else "kafka.ssl_key_location"
        raise ConfigError(key, "Oracle and SQL Server connectors keep their schema history in Kafka and their config must not hold "
                          "a secret: use sasl_mechanism PLAIN or SCRAM with sasl_password: ${VAR} for these sources")
    if kafka.sasl_password is not None and kafka.sasl_password_env is None:
        raise ConfigError("kafka.sasl_password", "Oracle and SQL Server connectors keep their schema history in Kafka: give the "
                          "password as ${VAR} so their config references it as ${env:VAR} instead of holding it")
    referenced = replace(kafka, sasl_password="${env:" + kafka.sasl_password_env + "}") if kafka.sasl_password_env else kafka
    for key, value in java_client_properties(referenced).items():
        if key != "bootstrap.servers":
            props[f"schema.history.internal.producer.{key}"] = value
            props[f"schema.history.internal.consumer.{key}"] = value
    return props


def class_prefix_for(env: dict[str, str] | Any) -> str:
    """The Kafka class prefix of the runtime described by ``env`` (``os.environ`` at the call site)."""
    return DATABRICKS_SHADE_PREFIX if "DATABRICKS_RUNTIME_VERSION" in env else ""


def _jaas_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
