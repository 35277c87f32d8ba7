"""Oracle and SQL Server connection keys (docs/reference.md) and the dialect registry."""

import pytest

from lib.config import parse_config
from lib.dialects import REGISTRY, get_dialect
from lib.errors import ConfigError
from tests.unit.dialect_sources import ENV, oracle_source, sqlserver_source


def error(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_oracle_takes_exactly_one_of_service_name_sid_descriptor():
    assert oracle_source().connection.service_name == "ORCLPDB1"
    assert oracle_source().connection.port == 1521
    sid = oracle_source({"service_name": None, "sid": "ORCL"}).connection
    assert (sid.sid, sid.service_name) == ("ORCL", None)
    desc = "(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=a)(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=S)))"
    d = oracle_source({"service_name": None, "host": None, "descriptor": desc}).connection
    assert d.descriptor == desc and d.host == ""
    assert error(oracle_source, {"sid": "ORCL"}) == (
        "sources.ora.connection: an oracle connection needs exactly one of service_name, sid, descriptor (got service_name, sid)"
    )
    assert error(oracle_source, {"service_name": None}) == (
        "sources.ora.connection: an oracle connection needs exactly one of service_name, sid, descriptor (got none)"
    )
    assert error(oracle_source, {"service_name": None}).startswith("sources.ora.connection:")
    assert error(oracle_source, {"database": "x"}) == "sources.ora.connection.database: oracle connections name the database by service_name, sid or descriptor"
    assert error(oracle_source, {"host": None}) == "sources.ora.connection.host: is required"


def test_sqlserver_keys_and_defaults():
    conn = sqlserver_source().connection
    assert (conn.port, conn.encrypt, conn.trust_server_certificate, conn.instance, conn.read_isolation) == (1433, True, False, None, "read_committed")
    conn = sqlserver_source({"instance": "SQLEXPRESS", "encrypt": False, "trust_server_certificate": "true", "read_isolation": "snapshot"}).connection
    assert (conn.instance, conn.encrypt, conn.trust_server_certificate, conn.read_isolation) == ("SQLEXPRESS", False, True, "snapshot")
    assert error(sqlserver_source, {"encrypt": "maybe"}) == "sources.mss.connection.encrypt: expected true or false, got 'maybe'"
    assert error(sqlserver_source, {"read_isolation": "dirty"}) == (
        "sources.mss.connection.read_isolation: expected one of read_committed, snapshot, got 'dirty'"
    )
    assert error(sqlserver_source, {"database": None}) == "sources.mss.connection.database: is required"


def test_keys_of_another_type_are_refused_with_their_path():
    assert error(sqlserver_source, {"service_name": "X"}) == "sources.mss.connection.service_name: is a oracle connection key; this source has type sqlserver"
    assert error(oracle_source, {"instance": "X"}) == "sources.ora.connection.instance: is a sqlserver connection key; this source has type oracle"
    assert error(sqlserver_source, long_columns="exclude") == "sources.mss.long_columns: applies to oracle sources only; this source has type sqlserver"


def test_long_columns_policy_and_cdc_oracle_keys():
    assert oracle_source().long_columns == "error"
    assert oracle_source(long_columns="skip_table").long_columns == "skip_table"
    assert error(oracle_source, long_columns="drop") == "sources.ora.long_columns: expected one of exclude, skip_table, error, got 'drop'"
    src = oracle_source(cdc={"topic_prefix": "ora", "database_name": "ORCLCDB", "pdb_name": "ORCLPDB1"})
    assert (src.cdc.database_name, src.cdc.pdb_name, src.cdc.kafka.bootstrap_servers) == ("ORCLCDB", "ORCLPDB1", "kafka1:9092")
    assert error(sqlserver_source, cdc={"topic_prefix": "m", "pdb_name": "P"}) == "sources.mss.cdc.pdb_name: applies to oracle sources only; this source has type sqlserver"


def test_passwords_stay_out_of_reprs():
    assert "ora-secret-1" not in repr(oracle_source()) and "mss-secret-2" not in repr(sqlserver_source())
    desc = oracle_source({"service_name": None, "descriptor": "(DESCRIPTION=(ADDRESS=(HOST=h)))"}).connection
    assert "database='<descriptor>'" in repr(desc)


def test_registry_builds_each_dialect_and_refuses_others():
    assert sorted(REGISTRY) == ["oracle", "postgres", "sqlserver"]
    assert [get_dialect(t).name for t in ("postgres", "oracle", "sqlserver")] == ["postgres", "oracle", "sqlserver"]
    assert error(get_dialect, "mysql", "sources.x.type") == "sources.x.type: expected one of postgres, oracle, sqlserver, got 'mysql'"
    raw = {"sources": {"x": {"type": "mysql", "connection": {"host": "h", "user": "u"}, "schemas": ["s"]}}}
    assert error(parse_config, raw, ENV) == "sources.x.type: expected one of postgres, oracle, sqlserver, got 'mysql'"
