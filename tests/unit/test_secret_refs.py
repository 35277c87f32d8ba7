"""${file:/path} and ${secret:scope/key} references: resolution, errors naming the YAML path, redaction."""

import copy
import logging

import pytest

from lib.config import load_config, parse_config
from lib.config.envsubst import Lookups, Unreadable, read_databricks_secret, substitute
from lib.errors import ConfigError
from lib.logs import RedactingFilter

BASE = {
    "sources": {
        "shop": {
            "type": "postgres",
            "connection": {"host": "h", "database": "d", "user": "u", "password": "${file:/run/secrets/shop}"},
            "schemas": ["public"],
        }
    },
}


def lookups(files=None, secrets=None) -> Lookups:
    def read_file(path):
        if path not in (files or {}):
            raise Unreadable("cannot read the file: No such file or directory")
        return files[path]

    def read_secret(scope, key):
        if (scope, key) not in (secrets or {}):
            raise Unreadable(f"secret {key!r} not found in scope {scope!r}")
        return secrets[(scope, key)]

    return Lookups(read_file, read_secret)


def test_file_reference_drops_trailing_newline_and_is_a_secret():
    cfg = parse_config(copy.deepcopy(BASE), {}, lookups(files={"/run/secrets/shop": "pw from file\n"}))
    assert cfg.source("shop").connection.password == "pw from file"
    assert "pw from file" in cfg.secrets()


def test_secret_reference_inside_a_longer_string():
    raw = copy.deepcopy(BASE)
    raw["sources"]["shop"]["connection"]["password"] = "pre-${secret:db/shop-password}-post"
    cfg = parse_config(raw, {}, lookups(secrets={("db", "shop-password"): "XYZ123"}))
    assert cfg.source("shop").connection.password == "pre-XYZ123-post"
    assert "XYZ123" in cfg.secrets()


def test_missing_file_names_the_yaml_path():
    with pytest.raises(ConfigError) as info:
        parse_config(copy.deepcopy(BASE), {}, lookups())
    assert str(info.value) == "sources.shop.connection.password: ${file:/run/secrets/shop}: cannot read the file: No such file or directory"


def test_relative_file_path_is_rejected():
    with pytest.raises(ConfigError, match=r"sources\.shop\.connection\.password: \$\{file:secrets/x\}: expected an absolute path"):
        substitute({"sources": {"shop": {"connection": {"password": "${file:secrets/x}"}}}}, {}, "", lookups())


def test_malformed_secret_reference():
    with pytest.raises(ConfigError, match=r"a\.b: \$\{secret:onlyscope\}: expected \$\{secret:<scope>/<key>\}"):
        substitute({"a": {"b": "${secret:onlyscope}"}}, {}, "", lookups())


def test_unknown_secret_names_path_scope_and_key():
    with pytest.raises(ConfigError) as info:
        substitute({"x": "${secret:db/nope}"}, {}, "", lookups(secrets={}))
    assert str(info.value) == "x: ${secret:db/nope}: secret 'nope' not found in scope 'db'"


def test_secret_outside_databricks_is_a_clear_config_error(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    path = tmp_path / "p.yaml"
    path.write_text(
        "sources:\n  shop:\n    type: postgres\n    connection: {host: h, database: d, user: u, password: '${secret:db/pw}'}\n"
        "    schemas: [public]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.path == "sources.shop.connection.password"
    assert "resolved through dbutils on a Databricks cluster only; outside Databricks use ${ENV_VAR} or ${file:/path}" in str(info.value)


def test_real_file_through_load_config(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-a-real-file\n")
    path = tmp_path / "p.yaml"
    path.write_text(
        f"sources:\n  shop:\n    type: postgres\n    connection: {{host: h, database: d, user: u, password: '${{file:{secret}}}'}}\n"
        "    schemas: [public]\n"
    )
    cfg = load_config(path, env={})
    assert cfg.source("shop").connection.password == "from-a-real-file"
    assert "from-a-real-file" in cfg.secrets()


def test_env_default_syntax_is_not_taken_for_a_reference():
    assert substitute("${file:-fallback}", {}, "", lookups()) == "fallback"
    assert substitute("${secret:-x}", {"secret": "env value"}, "", lookups()) == "env value"


def test_databricks_reader_refuses_off_databricks(monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    with pytest.raises(Unreadable, match="Databricks secret references are resolved through dbutils"):
        read_databricks_secret("db", "pw")


def test_resolved_secrets_are_masked_in_log_records():
    cfg = parse_config(copy.deepcopy(BASE), {}, lookups(files={"/run/secrets/shop": "hunter2-pw"}))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connecting with %s", ("hunter2-pw",), None)
    RedactingFilter(cfg.secrets()).filter(record)
    assert record.getMessage() == "connecting with ***"


def test_kafka_connect_provider_reference_is_passed_verbatim():
    raw = copy.deepcopy(BASE)
    raw["sources"]["shop"]["connection"]["password"] = "pw"
    raw["sources"]["shop"]["cdc"] = {"topic_prefix": "shop", "password_reference": "${file:/etc/kafka/shop.properties:password}"}
    cfg = parse_config(raw, {}, lookups())
    assert cfg.source("shop").cdc.password_reference == "${file:/etc/kafka/shop.properties:password}"


FILES = {"/run/secrets/shop": "pw"}
PASSWORD_REFERENCE_ERROR = (
    "sources.shop.cdc.password_reference: expected exactly one Kafka Connect config-provider reference, "
    "${<provider>:<key>} or ${<provider>:<path>:<key>} (e.g. ${file:/secrets/db.properties:password} or ${env:DB_PASSWORD}), "
    "which Kafka Connect resolves: never the password itself, which would be written to the connector config and sent to "
    "Kafka Connect (the value is not shown)"
)


@pytest.mark.parametrize("reference", ["${env:SHOP_DB_PASSWORD}", "${file:/secrets/db.properties:password}", "${vault:secret/data/db:password}"])
def test_password_reference_accepts_connect_provider_references(reference):
    raw = copy.deepcopy(BASE)
    raw["sources"]["shop"]["cdc"] = {"topic_prefix": "shop", "password_reference": reference}
    assert parse_config(raw, {}, lookups(files=FILES)).source("shop").cdc.password_reference == reference


@pytest.mark.parametrize(
    "value",
    [
        "hunter2-literal",  # a literal password
        "${SHOP_DB_PASSWORD}",  # not a Kafka Connect reference (no provider): Connect would send it as the password
        "pw-${env:X}",  # text around the reference
        "${env:A}${env:B}",  # two references
        " ${env:SHOP_DB_PASSWORD}",
        "${env:}",  # no key
        "${:key}",  # no provider
        "",
        123456,
        1.5,
    ],
)
def test_password_reference_refuses_anything_but_one_reference_without_echoing_it(value):
    raw = copy.deepcopy(BASE)
    raw["sources"]["shop"]["cdc"] = {"topic_prefix": "shop", "password_reference": value}
    with pytest.raises(ConfigError) as info:
        parse_config(raw, {"SHOP_DB_PASSWORD": "pw", "X": "y"}, lookups(files=FILES))
    assert str(info.value) == PASSWORD_REFERENCE_ERROR
    if value not in ("", "${env:}", "${:key}"):
        assert str(value) not in str(info.value)


def test_connector_config_refuses_a_literal_reference_built_without_the_loader():
    import dataclasses

    from lib.debezium.common import password_reference

    raw = copy.deepcopy(BASE)
    raw["sources"]["shop"]["cdc"] = {"topic_prefix": "shop"}
    src = parse_config(raw, {}, lookups(files=FILES)).source("shop")
    src = dataclasses.replace(src, cdc=dataclasses.replace(src.cdc, password_reference="hunter2-literal"))
    with pytest.raises(ConfigError) as info:
        password_reference(src)
    assert str(info.value) == PASSWORD_REFERENCE_ERROR
