"""lib/spark_sql.py: the one way names and values are written into Spark SQL text."""

from __future__ import annotations

from lib.spark_sql import delta_path, ident, string


def test_identifiers_keep_spaces_dots_quotes_and_backticks() -> None:
    assert ident('Order Items') == "`Order Items`"
    assert ident('a.b "c" `d`') == '`a.b "c" ``d```'


def test_string_literals_escape_quotes_and_backslashes() -> None:
    assert string("it's C:\\lake") == "'it\\'s C:\\\\lake'"


def test_a_delta_path_is_a_quoted_table_reference() -> None:
    assert delta_path("/lake/Sales Dept/`x`") == "delta.`/lake/Sales Dept/``x```"
