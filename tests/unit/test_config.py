import copy

import pytest

from lib.config import load_config, parse_config
from lib.config.envsubst import substitute
from lib.errors import ConfigError

BASE = {
    "lake": {"root": "${LAKE_ROOT:-./lake}", "format": "delta"},
    "kafka": {"bootstrap_servers": "${KAFKA_BOOTSTRAP:-127.0.0.1:9092}"},
    "checkpoints": {"root": "./checkpoints"},
    "sources": {
        "shop": {
            "type": "postgres",
            "connection": {"host": "127.0.0.1", "port": 5432, "database": "shop", "user": "loader", "password": "${SHOP_DB_PASSWORD}"},
            "schemas": ["public"],
            "include": ["*"],
            "exclude": [],
            "cdc": {"topic_prefix": "shop"},
        }
    },
}
ENV = {"SHOP_DB_PASSWORD": "s3cr3t-pw"}


def doc(**changes):
    d = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return d


_DELETE = object()


def error_of(raw, env=ENV):
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env)
    return str(info.value)


def test_valid_config_is_typed_and_defaulted():
    cfg = parse_config(doc(), ENV)
    src = cfg.source("shop")
    assert src.connection.port == 5432
    assert src.connection.password == "s3cr3t-pw"
    assert src.schemas == ("public",)
    assert src.cdc.slot_name == "lakehouse_shop" and src.cdc.publication_name == "lakehouse_shop"
    assert cfg.lake.root == "./lake" and cfg.lake.format == "delta"
    assert cfg.bulk.partitions == 4 and cfg.bulk.max_attempts == 3
    assert cfg.kafka.bootstrap_servers == "127.0.0.1:9092"


def test_env_substitution_with_defaults_and_numeric_strings():
    cfg = parse_config(doc(sources__shop__connection__port="${PG_PORT}"), {**ENV, "PG_PORT": "55432", "LAKE_ROOT": "/data/lake"})
    assert cfg.source("shop").connection.port == 55432
    assert cfg.lake.root == "/data/lake"


def test_password_with_leading_zero_stays_a_string():
    cfg = parse_config(doc(), {"SHOP_DB_PASSWORD": "0123"})
    assert cfg.source("shop").connection.password == "0123"


def test_unset_variable_names_variable_and_path():
    message = error_of(doc(), env={})
    assert message.startswith("sources.shop.connection.password: environment variable SHOP_DB_PASSWORD is not set")


def test_port_must_be_an_integer():
    assert error_of(doc(sources__shop__connection__port="abc")) == "sources.shop.connection.port: expected an integer, got 'abc'"


def test_bad_enum_lists_allowed_values():
    assert error_of(doc(sources__shop__type="mysql")) == "sources.shop.type: expected one of postgres, oracle, sqlserver, got 'mysql'"
    assert error_of(doc(lake__format="csv")) == "lake.format: expected one of delta, parquet, got 'csv'"
    assert error_of(doc(bulk={"small_table_writer": "rust"})) == "bulk.small_table_writer: expected one of delta-rs, spark, got 'rust'"
    assert parse_config(doc(), ENV).bulk.small_table_writer == "delta-rs"
    assert parse_config(doc(bulk={"small_table_writer": "spark"}), ENV).bulk.small_table_writer == "spark"
    assert error_of(doc(bulk={"small_table_reader": "jdbc"})) == "bulk.small_table_reader: expected one of direct, spark, got 'jdbc'"
    assert parse_config(doc(), ENV).bulk.small_table_reader == "direct"
    assert parse_config(doc(bulk={"small_table_reader": "spark"}), ENV).bulk.small_table_reader == "spark"
    assert error_of(doc(lake__pipeline_writer="duckdb")) == "lake.pipeline_writer: expected one of delta-rs, spark, got 'duckdb'"
    assert parse_config(doc(), ENV).lake.pipeline_writer == "delta-rs"
    assert parse_config(doc(lake__pipeline_writer="spark"), ENV).lake.pipeline_writer == "spark"


def test_unknown_and_missing_keys():
    assert error_of(doc(sources__shop__connection__hots="x")) == "sources.shop.connection.hots: unknown key"
    assert error_of(doc(sources__shop__connection__host=_DELETE)) == "sources.shop.connection.host: is required"
    assert error_of(doc(sources__shop__schemas=_DELETE)) == "sources.shop.schemas: is required"
    assert error_of(doc(bulk={"partitions": 0})) == "bulk.partitions: expected an integer >= 1, got 0"
    assert error_of(doc(sources__shop__schemas="public")) == "sources.shop.schemas: expected a list of strings, got 'public'"


def test_oracle_needs_service_name_or_sid():
    raw = doc(sources__shop__type="oracle")
    del raw["sources"]["shop"]["connection"]["database"]
    del raw["sources"]["shop"]["connection"]["port"]
    assert error_of(raw) == "sources.shop.connection: an oracle connection needs exactly one of service_name, sid, descriptor (got none)"
    raw["sources"]["shop"]["connection"]["service_name"] = "ORCLPDB1"
    assert parse_config(raw, ENV).source("shop").connection.port == 1521


def test_unknown_source_is_a_config_error():
    cfg = parse_config(doc(), ENV)
    with pytest.raises(ConfigError, match="sources: unknown source 'nope' \\(configured: shop\\)"):
        cfg.source("nope")


def test_table_overrides():
    raw = doc(sources__shop__tables={"public.Gift Cards": {"split_column": "code", "partitions": 3, "key_columns": ["code"]}})
    override = parse_config(raw, ENV).source("shop").override_for("public", "Gift Cards")
    assert override.split_column == "code" and override.partitions == 3 and override.key_columns == ("code",)
    assert "tables.\"bad\"" not in error_of(doc(sources__shop__tables={"bad": {}}))
    assert error_of(doc(sources__shop__tables={"bad": {}})) == "sources.shop.tables.bad: table overrides are keyed by 'schema.table'"


def test_secrets_are_redacted_in_repr_and_listed():
    cfg = parse_config(doc(lake__spark_conf={"fs.azure.account.key.acct.dfs.core.windows.net": "azure-key-123"}), ENV)
    assert "s3cr3t-pw" not in repr(cfg)
    assert "azure-key-123" not in repr(cfg)
    assert set(cfg.secrets()) == {"s3cr3t-pw", "azure-key-123"}


def test_substitute_recurses_into_lists_and_keeps_non_strings():
    assert substitute({"a": ["${X}", 3, True]}, {"X": "x"}) == {"a": ["x", 3, True]}
    assert substitute("pre-${X:-d}-post", {}) == "pre-d-post"


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lake: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML at line"):
        load_config(bad)


def test_repo_example_config_loads():
    cfg = load_config("config/pipeline.yaml", env={})
    assert cfg.source("shop").connection.port == 55432


def test_stream_section_defaults():
    stream = parse_config(doc(), ENV).stream
    assert (stream.trigger_seconds, stream.max_offsets_per_trigger, stream.apply_threads) == (1.0, 100_000, 4)
    assert (stream.starting_offsets, stream.fail_on_data_loss) == ("earliest", True)
    assert (stream.tombstone_retention_hours, stream.max_attempts, stream.retry_backoff_seconds) == (168.0, 3, 2.0)
    assert (stream.deletion_vectors, stream.merge_writer, stream.merge_writer_max_table_mb) == (None, "delta-rs", 256)  # auto: on where Spark MERGEs
    assert parse_config(doc(stream=None), ENV).stream == stream  # an empty `stream:` key is all defaults


@pytest.mark.parametrize(("value", "parsed"), [(True, True), (False, False), ("true", True), ("False", False), ("auto", None), (None, None)])
def test_deletion_vectors_is_true_false_or_auto(value, parsed):
    assert parse_config(doc(stream={"deletion_vectors": value}), ENV).stream.deletion_vectors is parsed


def test_stream_section_overrides_and_environment_values():
    raw = doc(stream={
        "trigger_seconds": 2.5, "max_offsets_per_trigger": "${MAX_OFFSETS}", "apply_threads": 8, "starting_offsets": "latest",
        "fail_on_data_loss": "false", "tombstone_retention_hours": 24, "max_attempts": 5, "retry_backoff_seconds": "0.5",
    })
    stream = parse_config(raw, {**ENV, "MAX_OFFSETS": "50000"}).stream
    assert stream.trigger_seconds == 2.5 and stream.max_offsets_per_trigger == 50_000 and stream.apply_threads == 8
    assert stream.starting_offsets == "latest" and stream.fail_on_data_loss is False
    assert stream.tombstone_retention_hours == 24.0 and stream.max_attempts == 5 and stream.retry_backoff_seconds == 0.5


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        ({"apply_threads": 0}, "stream.apply_threads: expected an integer >= 1, got 0"),
        ({"max_offsets_per_trigger": 0}, "stream.max_offsets_per_trigger: expected an integer >= 1, got 0"),
        ({"max_offsets_per_trigger": "many"}, "stream.max_offsets_per_trigger: expected an integer, got 'many'"),
        ({"max_attempts": 0}, "stream.max_attempts: expected an integer >= 1, got 0"),
        ({"starting_offsets": "x"}, "stream.starting_offsets: expected one of earliest, latest, got 'x'"),
        ({"fail_on_data_loss": "maybe"}, "stream.fail_on_data_loss: expected true or false, got 'maybe'"),
        ({"trigger_seconds": -1}, "stream.trigger_seconds: expected a non-negative number, got -1"),
        ({"tombstone_retention_hours": "a week"}, "stream.tombstone_retention_hours: expected a non-negative number, got 'a week'"),
        ({"apply_thread": 2}, "stream.apply_thread: unknown key"),
        ({"deletion_vectors": "sometimes"}, "stream.deletion_vectors: expected auto, true or false, got 'sometimes'"),
        ({"deletion_vectors": 1}, "stream.deletion_vectors: expected auto, true or false, got 1"),
        ({"merge_writer": "duckdb"}, "stream.merge_writer: expected one of delta-rs, spark, got 'duckdb'"),
        ({"merge_writer_max_table_mb": 0}, "stream.merge_writer_max_table_mb: expected an integer >= 1, got 0"),
        ({"checkpoint": "/cp"}, "stream.checkpoint: unknown key"),
        ([1, 2], "stream: expected a mapping, got a list"),
    ],
)
def test_stream_section_errors_name_the_yaml_path(stream, message):
    assert error_of(doc(stream=stream)) == message


@pytest.mark.parametrize("name", ["_pipeline", "_x", "_"])
def test_source_name_starting_with_underscore_is_refused(name):
    raw = doc()
    raw["sources"] = {name: raw["sources"]["shop"]}
    assert error_of(raw) == f"sources.{name}: a source name must not start with '_' (the lake keeps its own tables under _pipeline)"


def test_source_name_with_inner_underscore_is_accepted():
    raw = doc()
    raw["sources"] = {"shop_eu": raw["sources"]["shop"]}
    assert parse_config(raw, ENV).source("shop_eu").name == "shop_eu"
