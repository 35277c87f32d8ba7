import pytest

from lib.config import parse_config
from lib.debezium.common import include_list, streamable
from lib.debezium.connect_client import carries, config_changed, connector_state, failure_trace
from lib.dialects.base import Column, Table
from lib.dialects.postgres.debezium import connector_config
from lib.dialects.postgres.snapshot import replica_identity_sql
from lib.errors import ConfigError


def source(password="${SHOP_DB_PASSWORD}", **cdc):
    raw = {
        "sources": {
            "shop": {
                "type": "postgres",
                "connection": {"host": "db.internal", "port": 5432, "database": "shop", "user": "loader", "password": password},
                "schemas": ["public"],
                "cdc": {"topic_prefix": "shop", **cdc},
            }
        }
    }
    return parse_config(raw, {"SHOP_DB_PASSWORD": "pw-value-123"}).source("shop")


def test_postgres_connector_config_streams_from_the_bulk_loads_slot():
    config = connector_config(source(), [("public", "orders"), ("public", "Gift Cards"), ("sales.eu", "order_items")])
    assert config["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert config["topic.prefix"] == "shop"
    assert config["plugin.name"] == "pgoutput"
    assert (config["slot.name"], config["publication.name"]) == ("lakehouse_shop", "lakehouse_shop")
    assert config["publication.autocreate.mode"] == "disabled"
    assert config["snapshot.mode"] == "no_data"
    assert config["table.include.list"] == "public\\.Gift\\ Cards,public\\.orders,sales\\.eu\\.order_items"
    assert config["decimal.handling.mode"] == "string" and config["interval.handling.mode"] == "string"
    assert config["time.precision.mode"] == "adaptive_time_microseconds"
    # compact messages by default: values only, the stream knows each column's encoding
    assert config["value.converter"] == "org.apache.kafka.connect.json.JsonConverter" and config["value.converter.schemas.enable"] == "false"
    assert config["key.converter.schemas.enable"] == "false"
    assert config["heartbeat.interval.ms"] == "10000"
    assert config["database.password"] == "${env:SHOP_DB_PASSWORD}"
    assert "pw-value-123" not in repr(config)


def test_postgres_connector_recovery_settings_are_explicit():
    """The settings that decide whether the connector recovers by itself (docs/operations.md)."""
    config = connector_config(source(), [("public", "orders")])
    # a restarted task retries taking a still-held slot for 10 minutes, longer than the stream's stall_seconds
    assert (config["slot.max.retries"], config["slot.retry.delay.ms"]) == ("60", "10000")
    assert int(config["slot.max.retries"]) * int(config["slot.retry.delay.ms"]) / 1000 > 90
    assert config["errors.max.retries"] == "-1" and config["retriable.restart.connector.wait.ms"] == "10000"
    assert (config["heartbeat.interval.ms"], config["topic.heartbeat.prefix"]) == ("10000", "__debezium-heartbeat")
    assert config["status.update.interval.ms"] == "10000"
    from lib.debezium.common import heartbeat_topic

    assert heartbeat_topic("shop") == "__debezium-heartbeat.shop"
    assert "heartbeat.action.query" not in config
    query = "INSERT INTO hb (id, at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET at = now()"
    assert connector_config(source(heartbeat_action_query=query), [])["heartbeat.action.query"] == query


def test_password_reference_override_and_refusal_of_plain_passwords():
    assert connector_config(source(password_reference="${file:/run/secrets/db.properties:password}"), [])["database.password"] == (
        "${file:/run/secrets/db.properties:password}"
    )
    with pytest.raises(ConfigError, match=r"sources\.shop\.cdc\.password_reference: is required when connection.password is not an"):
        connector_config(source(password="plain-pw"), [("public", "t")])


def test_config_names_and_validation():
    s = source(slot_name="my_slot", publication_name="my_pub", connector_name="shop-cdc", heartbeat_interval_ms=5000, replica_identity_full=True)
    config = connector_config(s, [])
    assert (config["slot.name"], config["publication.name"], config["heartbeat.interval.ms"]) == ("my_slot", "my_pub", "5000")
    assert s.cdc.connector_name == "shop-cdc" and s.cdc.replica_identity_full
    with pytest.raises(ConfigError, match=r"sources\.shop\.cdc\.slot_name: expected lower-case"):
        source(slot_name="Bad-Slot")
    with pytest.raises(ConfigError, match=r"sources\.shop\.cdc\.replica_identity_full: expected true or false"):
        source(replica_identity_full="maybe")


def test_keyless_tables_are_streamed_only_with_replica_identity_full():
    keyed = Table("public", "a", (Column("id", "int", False, 1),), ("id",), 1, 0)
    keyless = Table("public", "log", (Column("v", "text", True, 1),), (), 1, 0)
    covered, refused = streamable([keyed, keyless], source().cdc)
    assert covered == [keyed] and list(refused) == ["public.log"] and "no primary key" in refused["public.log"]
    covered, refused = streamable([keyed, keyless], source(replica_identity_full=True).cdc)
    assert covered == [keyed, keyless] and refused == {}
    assert replica_identity_sql([keyed, keyless], {}) == ['ALTER TABLE "public"."log" REPLICA IDENTITY FULL']
    assert replica_identity_sql([keyless], {("public", "log"): "f"}) == []


def test_include_list_rejects_commas():
    with pytest.raises(ConfigError, match="commas"):
        include_list([("public", "a,b")])


def test_connector_state():
    running = {"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "RUNNING"}]}
    assert connector_state(running) == "RUNNING"
    assert connector_state({"connector": {"state": "RUNNING"}, "tasks": []}) == "STARTING"
    failed = {"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "FAILED", "trace": "org.x.Boom: slot in use\n\tat y"}]}
    assert connector_state(failed) == "FAILED" and failure_trace(failed) == "org.x.Boom: slot in use"
    assert connector_state(None) == "MISSING"


def test_an_unchanged_connector_config_is_not_rewritten_and_tasks_are_matched_on_the_desired_keys():
    desired = {"connector.class": "io.debezium.connector.postgresql.PostgresConnector", "slot.name": "slot_shop"}
    stored = {"name": "lakehouse-shop", **desired}
    assert not config_changed(stored, "lakehouse-shop", desired)
    assert config_changed(None, "lakehouse-shop", desired)
    assert config_changed({**stored, "slot.name": "slot_old"}, "lakehouse-shop", desired)
    assert config_changed({**stored, "table.include.list": "public.a"}, "lakehouse-shop", desired), "a removed key is a change"
    task = {"task.class": "io.debezium.connector.postgresql.PostgresConnectorTask", **stored}
    assert carries(task, desired) and not carries({**task, "slot.name": "slot_old"}, desired)


def test_tables_with_a_double_quote_in_schema_or_name_are_refused_with_a_note():
    keyed = Table("public", "orders", (Column("id", "int", False, 1),), ("id",), 1, 0)
    quoted_name = Table("public", 'say "hi"', (Column("id", "int", False, 1),), ("id",), 1, 0)
    quoted_schema = Table('we"ird', "t", (Column("id", "int", False, 1),), ("id",), 1, 0)
    keyless_quoted = Table("public", 'log"', (Column("v", "text", True, 1),), (), 1, 0)
    for cdc in (source().cdc, source(replica_identity_full=True).cdc):  # a key or REPLICA IDENTITY FULL does not help
        covered, refused = streamable([keyed, quoted_name, quoted_schema, keyless_quoted], cdc)
        assert covered == [keyed]
        assert sorted(refused) == ['public.log"', 'public.say "hi"', 'we"ird.t']
        for note in refused.values():
            assert note == "CDC not enabled: Debezium cannot stream tables whose schema or name contains a double quote"
    # other awkward names stay streamable
    covered, refused = streamable([Table("public", "Gift Cards", (), ("code",), 1, 0), Table("it's", "a`b", (), ("k",), 1, 0)], source().cdc)
    assert len(covered) == 2 and refused == {}


def test_message_format_with_schema_blocks_for_existing_deployments():
    config = connector_config(source(message_format="json_with_schema"), [("public", "orders")])
    assert config["value.converter.schemas.enable"] == "true" and config["key.converter.schemas.enable"] == "true"


def test_an_unknown_message_format_names_the_key_and_the_choices():
    with pytest.raises(ConfigError) as err:
        source(message_format="avro")
    assert "sources.shop.cdc.message_format" in str(err.value) and "compact" in str(err.value) and "json_with_schema" in str(err.value)
