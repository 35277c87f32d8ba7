"""The PostgreSQL JDBC URL carries the database name percent-encoded: pgjdbc's Driver.parseURL cuts the URL at
the first '?' and decodes the name with java.net.URLDecoder ('+' is a space), as urllib's unquote_plus does.
(Checked against pgjdbc 42.7.7's parseURL: every name below comes back unchanged.)"""

from urllib.parse import unquote_plus

import pytest

from lib.config import parse_config
from lib.dialects import get_dialect
from lib.dialects.postgres import jdbc_url


def connection(database: str):
    raw = {"sources": {"shop": {"type": "postgres", "schemas": ["public"],
                                "connection": {"host": "db.internal", "port": 5433, "database": database, "user": "u", "password": "pw"}}}}
    return parse_config(raw, {}).source("shop").connection


def test_a_name_with_a_space_a_slash_and_a_question_mark():
    url = get_dialect("postgres").jdbc_url(connection("my db/x?y"))
    assert url == "jdbc:postgresql://db.internal:5433/my%20db%2Fx%3Fy"


def test_a_plain_name_is_unchanged():
    assert get_dialect("postgres").jdbc_url(connection("shop")) == "jdbc:postgresql://db.internal:5433/shop"


@pytest.mark.parametrize("name", ["my db/x?y", "a+b&c=d%e#f", "Zürich ünïcode", "semi;colon\\back", "100%", "~tilde.dot-dash_"])
def test_pgjdbc_decodes_the_name_back(name):
    url = jdbc_url("h", 5432, name)
    prefix = "jdbc:postgresql://h:5432/"
    assert url.startswith(prefix)
    segment = url[len(prefix):]
    assert not set(segment) & set("/?&#+ ;=\\"), segment  # nothing pgjdbc would cut at or read as a property
    assert unquote_plus(segment) == name  # java.net.URLDecoder.decode(segment, UTF-8)
