"""The top-level ``kafka`` section: bootstrap servers, TLS and SASL, validated once at load.

Every problem is a :class:`ConfigError` naming the key (``kafka.sasl_password``); a secret's value is never
in the message. The PEM files are read here, once, through the loader's ``read_file``, so an unreadable CA
is a config error and not a handshake failure minutes later.
"""

from __future__ import annotations

from collections.abc import Callable

from lib.config.envsubst import Unreadable
from lib.config.model import SASL_MECHANISMS, SECURITY_PROTOCOLS, KafkaConfig, OAuthBearer
from lib.config.node import Node
from lib.errors import ConfigError

# Client properties the typed keys set: given under `properties` they would silently fight the typed value.
_TYPED_PROPERTIES = {
    "bootstrap.servers": "bootstrap_servers",
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_username",
    "sasl.password": "sasl_password",
    "sasl.jaas.config": "sasl_username / sasl_password / oauthbearer",
    "ssl.ca.location": "ssl_ca_location",
    "ssl.truststore.certificates": "ssl_ca_location",
    "ssl.certificate.location": "ssl_certificate_location",
    "ssl.key.location": "ssl_key_location",
    "ssl.key.password": "ssl_key_password",
}
_PEM_MARKERS = {"certificate": "-----BEGIN CERTIFICATE-----", "private key": "PRIVATE KEY-----"}


def parse_kafka(node: Node, read_file: Callable[[str], str], password_env: str | None = None) -> KafkaConfig:
    """``kafka``: validated settings; ``read_file`` reads the PEM files (it raises :class:`Unreadable`);
    ``password_env`` is VAR when the YAML says ``sasl_password: ${VAR}``."""
    protocol = node.choice("security_protocol", SECURITY_PROTOCOLS, default="PLAINTEXT")
    sasl = protocol.startswith("SASL_")
    tls = protocol in ("SSL", "SASL_SSL")
    mechanism = node.choice("sasl_mechanism", SASL_MECHANISMS, required=sasl)
    if mechanism is not None and not sasl:
        raise ConfigError(node._at("sasl_mechanism"), f"needs security_protocol SASL_SSL or SASL_PLAINTEXT (security_protocol is {protocol})")
    password_mechanism = mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
    username = node.str("sasl_username", required=password_mechanism)
    password = node.str("sasl_password", required=password_mechanism)
    for key, value in (("sasl_username", username), ("sasl_password", password)):
        if value is not None and not password_mechanism:
            raise ConfigError(node._at(key), f"applies to sasl_mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl_mechanism is {mechanism or 'not set'})")
    oauth = _oauthbearer(node.child("oauthbearer", required=mechanism == "OAUTHBEARER"))
    if oauth is not None and mechanism != "OAUTHBEARER":
        raise ConfigError(node._at("oauthbearer"), f"applies to sasl_mechanism OAUTHBEARER (sasl_mechanism is {mechanism or 'not set'})")
    files = {key: node.str(key) for key in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")}
    key_password = node.str("ssl_key_password")
    for key, value in (*files.items(), ("ssl_key_password", key_password)):
        if value is not None and not tls:
            raise ConfigError(node._at(key), f"needs security_protocol SSL or SASL_SSL (security_protocol is {protocol})")
    if (files["ssl_certificate_location"] is None) != (files["ssl_key_location"] is None):
        missing = "ssl_key_location" if files["ssl_key_location"] is None else "ssl_certificate_location"
        raise ConfigError(node._at(missing), "is required: a client certificate (mTLS) needs both ssl_certificate_location and ssl_key_location")
    if key_password is not None and files["ssl_key_location"] is None:
        raise ConfigError(node._at("ssl_key_password"), "applies with ssl_key_location (the encrypted private key it opens)")
    properties = node.str_map("properties")
    for name in properties:
        if name.lower() in _TYPED_PROPERTIES:
            raise ConfigError(f"{node._at('properties')}.{name}", f"set it with kafka.{_TYPED_PROPERTIES[name.lower()]}, not as a property")
    servers = node.str("bootstrap_servers", default="127.0.0.1:9092")
    if not servers.strip():
        raise ConfigError(node._at("bootstrap_servers"), "expected host:port[,host:port...]")
    cfg = KafkaConfig(
        bootstrap_servers=servers,
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=username,
        sasl_password=password,
        sasl_password_env=password_env if password is not None else None,
        oauthbearer=oauth,
        ssl_ca_location=files["ssl_ca_location"],
        ssl_certificate_location=files["ssl_certificate_location"],
        ssl_key_location=files["ssl_key_location"],
        ssl_key_password=key_password,
        ssl_ca_pem=_pem(node, "ssl_ca_location", files["ssl_ca_location"], "certificate", read_file),
        ssl_certificate_pem=_pem(node, "ssl_certificate_location", files["ssl_certificate_location"], "certificate", read_file),
        ssl_key_pem=_pem(node, "ssl_key_location", files["ssl_key_location"], "private key", read_file),
        properties=tuple(sorted(properties.items())),
    )
    node.done()
    return cfg


def _oauthbearer(node: Node) -> OAuthBearer | None:
    if node.value is None:
        return None
    oauth = OAuthBearer(
        token_endpoint_url=node.str("token_endpoint_url", required=True),
        client_id=node.str("client_id", required=True),
        client_secret=node.str("client_secret", required=True),
        scope=node.str("scope"),
    )
    if not oauth.token_endpoint_url.startswith(("https://", "http://")):
        raise ConfigError(node._at("token_endpoint_url"), "expected the identity provider's token URL (https://...)")
    node.done()
    return oauth


def _pem(node: Node, key: str, location: str | None, what: str, read_file: Callable[[str], str]) -> str | None:
    if location is None:
        return None
    try:
        text = read_file(location)
    except Unreadable as exc:
        raise ConfigError(node._at(key), f"{location}: {exc}") from None
    if _PEM_MARKERS[what] not in text:
        raise ConfigError(node._at(key), f"{location} holds no PEM {what} (expected a '{_PEM_MARKERS[what]}' block)")
    return text
