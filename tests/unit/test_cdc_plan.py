"""lib.cdc.plan: the Spark SQL text of one table's apply step (pure, no JVM).

The comparison logic (the MERGE's position guard, the truncate floor, the tombstone filter) is checked
twice: as exact text, and by evaluating the generated boolean in Python with a tiny translator of the
few SQL operators these expressions use, against Python's own tuple ordering.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

import pytest

from lib.cdc import plan as P
from lib.cdc.envelope import envelope_ddl, is_unavailable_expr
from lib.cdc.plan import CHANGE, COMMIT, TableSpec
from lib.dialects.base import Column
from lib.dialects.postgres.types import column_read

# Field schemas as Debezium 3.x sends them for PostgreSQL (JsonConverter, schemas enabled, the
# connector settings of lib/debezium/common.py): copied from real messages of the local stack.
INT4 = {"type": "int32", "optional": False, "parameters": {"__debezium.source.column.type": "INT4"}}
TEXT = {"type": "string", "optional": True, "parameters": {"__debezium.source.column.type": "TEXT"}}
BYTEA = {"type": "bytes", "optional": True, "parameters": {"__debezium.source.column.type": "BYTEA"}}
INT_ARRAY = {"type": "array", "items": {"type": "int32", "optional": True}, "optional": True,
             "parameters": {"__debezium.source.column.type": "_INT4", "__debezium.source.column.length": "10",
                            "__debezium.source.column.scale": "0"}}
NUMERIC_12_2 = {"type": "string", "optional": True,
                "parameters": {"__debezium.source.column.type": "NUMERIC", "__debezium.source.column.length": "12",
                               "__debezium.source.column.scale": "2"}}
TIMESTAMP = {"type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp", "version": 1,
             "parameters": {"__debezium.source.column.type": "TIMESTAMP"}}

IMAGE = "(CASE WHEN __p.op = 'd' THEN __p.before ELSE __p.after END)"
GUARD = (
    "(t.`__op` = 'r' OR (s.__source_commit_pos > t.__source_commit_pos OR "
    "(s.__source_commit_pos = t.__source_commit_pos AND s.__source_change_pos > t.__source_change_pos)))"
)


def spec(**changes) -> TableSpec:
    base = dict(
        source="shop", schema="public", table="orders", location="/lake/shop/public/orders", key_columns=("id",),
        columns=(("id", "int"), ("note", "string"), ("qty", "int"), ("tags", "array<int>"), ("price", "decimal(12,2)"),
                 ("blob", "binary"), ("created", "timestamp_ntz")),
    )
    return TableSpec(**{**base, **changes})


FIELDS = {"id": INT4, "note": TEXT, "qty": INT4, "tags": INT_ARRAY, "price": NUMERIC_12_2, "blob": BYTEA, "created": TIMESTAMP}


# --- a tiny evaluator for the boolean SQL these functions generate ------------------------------


def sql_truth(expr: str, names: dict[str, str], **values) -> bool:
    """Evaluate a generated SQL boolean made of comparisons, AND/OR/NOT and IS [NOT] NULL.

    ``names`` maps the SQL references (``s.__source_commit_pos``) to Python names bound in ``values``.
    SQL NULL is None; the expressions under test only reach a NULL comparison after a short-circuit."""
    text = expr
    for ref in sorted(names, key=len, reverse=True):
        text = text.replace(ref, names[ref])
    text = text.replace("IS NOT NULL", "is not None").replace("IS NULL", "is None")
    text = text.replace("<>", "!=")
    text = re.sub(r"(?<![<>!=])=(?!=)", "==", text)
    text = re.sub(r"\bAND\b", "and", text)
    text = re.sub(r"\bOR\b", "or", text)
    text = re.sub(r"\bNOT\b", "not", text)
    assert "`" not in text and "." not in text, f"untranslated reference in {text!r}"
    return bool(eval(text, {}, values))  # test-only: our own generated text


POSITIONS = [(0, 0), (5, 1), (5, 7), (5, 9), (6, 0), (6, 7), (9, 3)]


# --- quoting -------------------------------------------------------------------------------------


def test_identifiers_string_literals_and_delta_paths_are_quoted():
    assert P.q("Gift Cards") == "`Gift Cards`"
    assert P.q("we`ird") == "`we``ird`"
    assert P.q("``") == "``````"
    assert P.sql_string("it's") == "'it\\'s'"
    assert P.sql_string("C:\\dir\\") == "'C:\\\\dir\\\\'"
    assert P.sql_string("a\\'b") == "'a\\\\\\'b'"  # backslash first, so the quote's escape is not doubled
    assert P.delta_ref("/lake/shop/my schema/we`ird 'tbl'") == "delta.`/lake/shop/my schema/we``ird 'tbl'`"
    assert P.delta_ref("abfss://c@acct.dfs.core.windows.net/lake/shop/public/t") == "delta.`abfss://c@acct.dfs.core.windows.net/lake/shop/public/t`"


def test_parse_step_reads_the_envelope_with_an_escaped_ddl_literal():
    columns = ["id", "it's", "we`ird"]
    exprs = P.parse_exprs(columns)
    assert exprs[:6] == ["__topic", "__partition", "__offset", "__key", "__raw", "__schema_id"]
    assert exprs[6] == f"from_json(__raw, {P.sql_string(envelope_ddl(columns))}).payload AS __p"
    assert "`it\\'s`: string" in exprs[6] and "`we``ird`: string" in exprs[6]


# --- merge_sql -------------------------------------------------------------------------------------

AWKWARD = spec(
    location="/lake/shop/my schema/we`ird 'tbl'",
    key_columns=("id", "Order Id"),
    columns=(("id", "int"), ("Order Id", "string"), ("name", "string"), ("it's `x`", "string"), ("notes", "string")),
)


def merge_clauses(sql: str) -> tuple[str, list[str]]:
    """(the MERGE head, its WHEN [NOT] MATCHED clauses); CASE WHENs inside a clause stay in it."""
    parts = re.split(r" (?=WHEN (?:NOT )?MATCHED\b)", sql)
    return parts[0], parts[1:]


def test_merge_head_quotes_path_view_and_every_key_column():
    sql = P.merge_sql(AWKWARD, "cdc_3_ab`c", ["notes"])
    head, clauses = merge_clauses(sql)
    assert head == ("MERGE INTO delta.`/lake/shop/my schema/we``ird 'tbl'` AS t USING `cdc_3_ab``c` AS s "
                    "ON t.`id` = s.`id` AND t.`Order Id` = s.`Order Id`")
    assert len(clauses) == 3


def test_merge_guard_is_bulk_rows_lose_else_commit_then_change_position():
    _, clauses = merge_clauses(P.merge_sql(AWKWARD, "v", []))
    assert clauses[0] == f"WHEN MATCHED AND s.`__op` = 'd' AND {GUARD} THEN DELETE"
    assert clauses[1].startswith(f"WHEN MATCHED AND s.`__op` <> 'd' AND {GUARD} THEN UPDATE SET ")
    assert P.newer("s", "t") in GUARD


@pytest.mark.parametrize(("target", "event"), list(itertools.product(POSITIONS, POSITIONS)))
def test_merge_guard_semantics(target, event):
    names = {"t.`__op`": "t_op", f"s.{COMMIT}": "s_commit", f"s.{CHANGE}": "s_change",
             f"t.{COMMIT}": "t_commit", f"t.{CHANGE}": "t_change"}
    values = dict(s_commit=event[0], s_change=event[1], t_commit=target[0], t_change=target[1])
    # a row written by an earlier event: only a strictly later (commit, change) position replaces it
    assert sql_truth(GUARD, names, t_op="u", **values) is (event > target)
    assert sql_truth(GUARD, names, t_op="c", **values) is (event > target)
    # a row of the bulk copy (__op 'r'): every event that reached the MERGE is newer, whatever the numbers
    assert sql_truth(GUARD, names, t_op="r", **values) is True
    assert sql_truth(GUARD, names, t_op="r", s_commit=event[0], s_change=event[1], t_commit=None, t_change=None) is True


def test_merge_deletes_only_matched_rows_and_never_inserts_a_delete():
    _, clauses = merge_clauses(P.merge_sql(AWKWARD, "v", ["notes"]))
    deletes = [c for c in clauses if c.endswith("THEN DELETE")]
    assert deletes == [f"WHEN MATCHED AND s.`__op` = 'd' AND {GUARD} THEN DELETE"]
    inserts = [c for c in clauses if c.startswith("WHEN NOT MATCHED")]
    assert len(inserts) == 1 and inserts[0].startswith("WHEN NOT MATCHED AND s.`__op` <> 'd' THEN INSERT (")
    assert "BY SOURCE" not in " ".join(clauses)  # rows without an event in the batch are never touched


def test_merge_update_sets_every_non_key_column_and_the_pipeline_columns():
    _, clauses = merge_clauses(P.merge_sql(AWKWARD, "v", ["notes"]))
    update = clauses[1].split(" THEN UPDATE SET ", 1)[1]
    assert "t.`id` =" not in update and "t.`Order Id` =" not in update  # keys never change in place
    assert "t.`name` = s.`name`" in update
    assert "t.`it's ``x``` = s.`it's ``x```" in update
    assert "t.`notes` = CASE WHEN s.`__toast_notes` THEN t.`notes` ELSE s.`notes` END" in update  # TOAST keeps the stored value
    assert update.endswith(f"t.{COMMIT} = s.{COMMIT}, t.{CHANGE} = s.{CHANGE}, t.`__op` = s.`__op`, t.`__ingested_at` = current_timestamp()")


def test_merge_insert_lists_every_column_once_and_a_toast_placeholder_becomes_null():
    _, clauses = merge_clauses(P.merge_sql(AWKWARD, "v", ["notes"]))
    match = re.fullmatch(r"WHEN NOT MATCHED AND s.`__op` <> 'd' THEN INSERT \((.*)\) VALUES \((.*)\)", clauses[2])
    assert match
    names = match.group(1).split(", ")
    assert names == ["`id`", "`Order Id`", "`name`", "`it's ``x```", "`notes`", COMMIT, CHANGE, "`__op`", "`__ingested_at`"]
    values = match.group(2)
    assert values == ("s.`id`, s.`Order Id`, s.`name`, s.`it's ``x```, CASE WHEN s.`__toast_notes` THEN NULL ELSE s.`notes` END, "
                      f"s.{COMMIT}, s.{CHANGE}, s.`__op`, current_timestamp()")


def test_merge_without_toast_columns_has_no_placeholder_logic():
    sql = P.merge_sql(AWKWARD, "v", [])
    assert "__toast_" not in sql and "CASE" not in sql



def test_key_filter_names_the_sources_distinct_first_key_values_in_the_on_condition():
    keys = P.key_filter(spec(), [3, 1, 3, None, 2])
    assert keys == "t.`id` IN (1, 2, 3)"  # distinct, sorted, NULL left out (it matches nothing)
    head, clauses = merge_clauses(P.merge_sql(spec(), "v", [], keys))
    assert head.endswith("ON t.`id` = s.`id` AND t.`id` IN (1, 2, 3)") and len(clauses) == 3
    assert P.merge_sql(spec(), "v", []) == P.merge_sql(spec(), "v", [], None).replace(" AND t.`id` IN (1, 2, 3)", "")


def test_key_filter_quotes_string_keys_and_their_column():
    assert P.key_filter(AWKWARD, [1, 2]) == "t.`id` IN (1, 2)"  # the first key column of a composite key
    text_key = spec(key_columns=("Order Id",), columns=(("Order Id", "string"), ("qty", "int")))
    assert P.key_filter(text_key, ["it's", "a`b"]) == "t.`Order Id` IN ('a`b', 'it\\'s')"


@pytest.mark.parametrize("values", [[], [None], [1.5], [True], list(range(P.KEY_FILTER_MAX + 1))])
def test_key_filter_is_left_out_when_it_cannot_be_written_exactly_or_would_be_too_long(values):
    assert P.key_filter(spec(), values) is None


def test_key_filter_only_for_integer_and_string_keys():
    assert P.key_filter(spec(key_columns=("price",)), [1]) is None  # decimal
    assert P.key_filter(spec(key_columns=("created",)), [1]) is None  # timestamp
    assert P.key_filter(spec(key_columns=()), [1]) is None
    assert P.key_filter(spec(key_columns=("note",)), [1]) is None  # a string column with non-string values

# --- version_plan --------------------------------------------------------------------------------


def output_name(expr: str) -> str:
    match = re.search(r" AS (`(?:[^`]|``)*`|\w+)$", expr)
    if not match:
        return expr
    name = match.group(1)
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def error_case(select: tuple[str, ...]) -> str:
    assert select[-1].endswith(" END AS __error")
    return select[-1]


def test_version_plan_output_columns_and_positions():
    vplan = P.version_plan(spec(), FIELDS)
    names = [output_name(e) for e in vplan.select]
    assert names == ["__topic", "__partition", "__offset", "__key", "__raw", "__schema_id", "__op", COMMIT, CHANGE, "__txid", "__source_ts_ms",
                     "id", "note", "qty", "tags", "price", "blob", "created",
                     "__toast_note", "__toast_tags", "__toast_price", "__toast_blob", "__error"]
    assert vplan.select[7] == (f"coalesce(CAST(from_json(__p.source.sequence, 'array<string>')[0] AS decimal(38,0)), "
                               f"CAST(0 AS decimal(38,0))) AS {COMMIT}")
    assert vplan.select[8] == f"try_cast(__p.source.lsn AS decimal(38,0)) AS {CHANGE}"
    assert vplan.errors == () and vplan.lossy == ()


def test_deletes_decode_the_before_image_other_ops_the_after_image():
    vplan = P.version_plan(spec(), FIELDS)
    assert f"try_cast(({IMAGE}.`qty`) AS int) AS `qty`" in vplan.select
    assert f"({IMAGE}.`note`) AS `note`" in vplan.select


def test_a_column_absent_from_the_version_is_a_typed_null():
    fields = {k: v for k, v in FIELDS.items() if k not in ("created", "tags")}
    vplan = P.version_plan(spec(), fields)
    assert "CAST(NULL AS timestamp_ntz) AS `created`" in vplan.select
    assert "CAST(NULL AS array<int>) AS `tags`" in vplan.select
    assert "tags" not in vplan.toastable and vplan.errors == ()
    assert "column created" not in error_case(vplan.select) and "column tags" not in error_case(vplan.select)


def test_a_type_change_makes_every_event_of_the_version_an_error_naming_the_column():
    fields = {**FIELDS, "qty": TEXT}  # the source column became text; the lake column is int
    vplan = P.version_plan(spec(), fields)
    assert [c for c, _ in vplan.errors] == ["qty"]
    reason = vplan.errors[0][1]
    assert reason.startswith("column qty: ") and "type change" in reason and "int" in reason
    assert f"WHEN TRUE THEN {P.sql_string(reason)}" in error_case(vplan.select)
    assert "CAST(NULL AS int) AS `qty`" in vplan.select  # never a guessed value
    assert "qty" not in vplan.toastable and "__toast_qty" not in [output_name(e) for e in vplan.select]


def test_a_type_change_reason_with_quotes_stays_one_sql_literal():
    s = spec(columns=(("id", "int"), ("it's", "int")))
    vplan = P.version_plan(s, {"id": INT4, "it's": TEXT})
    reason = vplan.errors[0][1]
    assert reason.startswith("column it's: ")
    assert P.sql_string(reason) in error_case(vplan.select)
    assert "it\\'s" in P.sql_string(reason)


def test_only_string_bytes_and_array_fields_can_carry_a_toast_placeholder():
    vplan = P.version_plan(spec(), FIELDS)
    assert vplan.toastable == ("note", "tags", "price", "blob")
    flags = {output_name(e): e for e in vplan.select if output_name(e).startswith("__toast_")}
    assert flags["__toast_note"] == (f"(__p.op = 'u' AND coalesce(({IMAGE}.`note`) IN ('__debezium_unavailable_value'), false)) "
                                     "AS `__toast_note`")
    assert flags["__toast_blob"].startswith("(__p.op = 'u' AND coalesce(") and "'X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=='" in flags["__toast_blob"]
    assert "'[95,95,100,101" in flags["__toast_tags"]


def decode_check(case: str, column: str, lake_type: str) -> str:
    """The WHEN branch of the error CASE that dead-letters undecodable values of ``column``."""
    then = f" THEN 'column {column}: value cannot be decoded exactly to {lake_type}'"
    end = case.index(then)
    return case[case.rindex("WHEN __p.op <> 't' AND ", 0, end):end + len(then)]


def test_a_toast_placeholder_is_not_a_decoding_error_but_other_bad_values_are():
    case = error_case(P.version_plan(spec(), FIELDS).select)
    placeholder = is_unavailable_expr(NUMERIC_12_2, f"{IMAGE}.`price`")
    assert decode_check(case, "price", "decimal(12,2)").startswith(f"WHEN __p.op <> 't' AND NOT (__p.op = 'u' AND {placeholder}) AND NOT coalesce(")
    assert decode_check(case, "qty", "int").startswith("WHEN __p.op <> 't' AND NOT coalesce(")  # fixed-size: no placeholder exemption
    assert decode_check(case, "created", "timestamp_ntz").startswith("WHEN __p.op <> 't' AND NOT coalesce(")


def test_error_case_order_and_op_validation():
    case = error_case(P.version_plan(spec(), FIELDS).select)
    whens = case.split(" WHEN ")
    assert whens[0] == "CASE"
    assert whens[1] == "__p IS NULL OR __p.op IS NULL THEN 'unparseable: not a Debezium change event'"
    assert whens[2] == "__p.op NOT IN ('c', 'u', 'd', 'r', 't') THEN concat('unknown op ', __p.op)"
    assert f"WHEN __p.op <> 't' AND {IMAGE}.`id` IS NULL THEN 'key column id is null'" in case


def test_a_key_column_missing_from_the_version_is_an_error_for_every_event():
    s = spec(key_columns=("id", "Order Id"), columns=(("id", "int"), ("Order Id", "string"), ("note", "string")))
    vplan = P.version_plan(s, {"id": INT4, "note": TEXT})
    case = error_case(vplan.select)
    assert "WHEN TRUE THEN 'key column(s) missing from the event: Order Id'" in case
    assert "'key column id is null'" in case and "'key column Order Id is null'" not in case
    assert "CAST(NULL AS string) AS `Order Id`" in vplan.select


def test_column_names_with_backquotes_are_quoted_in_every_expression():
    s = spec(key_columns=("we`ird",), columns=(("we`ird", "int"), ("Gift Card", "string")))
    vplan = P.version_plan(s, {"we`ird": INT4, "Gift Card": TEXT})
    assert f"try_cast(({IMAGE}.`we``ird`) AS int) AS `we``ird`" in vplan.select
    assert f"({IMAGE}.`Gift Card`) AS `Gift Card`" in vplan.select
    assert "AS `__toast_Gift Card`" in " ".join(vplan.select)


@pytest.mark.parametrize("column", ["key", "offset", "partition", "topic", "raw"])
def test_source_columns_named_like_kafka_coordinates_get_distinct_output_names(column):
    s = spec(columns=(("id", "int"), (column, "string")))
    names = [output_name(e) for e in P.version_plan(s, {"id": INT4, column: TEXT}).select]
    assert len(names) == len(set(names)), f"duplicate output column {column!r}"


# --- filters and positions -----------------------------------------------------------------------

POS = {COMMIT: "commit", CHANGE: "change"}


def test_apply_filter_keeps_decodable_row_changes_not_in_the_bulk_copy():
    assert P.apply_filter(spec(), "V") == "__error IS NULL AND __op IN ('c', 'u', 'd', 'r') AND NOT coalesce(V, false)"
    truncated = spec(truncated_at=(120, 7))
    assert P.apply_filter(truncated, "V") == ("__error IS NULL AND __op IN ('c', 'u', 'd', 'r') AND NOT coalesce(V, false) AND "
                                              f"({COMMIT} > 120 OR ({COMMIT} = 120 AND {CHANGE} > 7))")


def test_truncate_filter_takes_only_truncates_after_the_snapshot():
    assert P.truncate_filter("V") == "__error IS NULL AND __op = 't' AND NOT coalesce(V, false)"


@pytest.mark.parametrize(("floor", "event"), list(itertools.product(POSITIONS, POSITIONS)))
def test_position_after_is_strictly_after(floor, event):
    assert sql_truth(P.position_after(*floor), POS, commit=event[0], change=event[1]) is (event > floor)


def test_lsn_fallback_counts_the_snapshot_position_itself_as_copied():
    assert P.lsn_fallback_visible(4242) == f"({CHANGE} <= 4242)"


@pytest.mark.parametrize(("tomb", "event", "op"), [(None, (1, 1), "u"), *itertools.product(POSITIONS, POSITIONS, ["c", "u", "d"])])
def test_tombstone_filter_drops_events_before_the_delete_and_keeps_the_delete_itself(tomb, event, op):
    names = {P.TOMB_COMMIT: "tomb_commit", P.TOMB_CHANGE: "tomb_change", "__op": "op", **POS}
    tc, tch = tomb if tomb else (None, None)
    keep = sql_truth(P.tombstone_filter(), names, tomb_commit=tc, tomb_change=tch, commit=event[0], change=event[1], op=op)
    # the delete at the tombstone's own position applies again: a table copied again from a snapshot
    # before it still holds the row (on a newer row the MERGE's position guard makes it nothing)
    assert keep is (tomb is None or event > tomb or (event == tomb and op == "d"))


def test_fill_and_last_event_order_by_position_then_kafka_coordinates():
    s = spec(key_columns=("id", "Order Id"), columns=(("id", "int"), ("Order Id", "string"), ("notes", "string"), ("qty", "int")))
    exprs = P.fill_exprs(s, ["notes"])
    order = f"PARTITION BY `id`, `Order Id` ORDER BY {COMMIT}, {CHANGE}, __partition, __offset"
    assert exprs[:3] == ["*", f"row_number() OVER ({order}) AS __rn", "count(1) OVER (PARTITION BY `id`, `Order Id`) AS __events"]
    # the fill takes the latest earlier real value of the key: never a delete's, never another placeholder
    assert exprs[3] == ("last(CASE WHEN __op IN ('c', 'u', 'r') AND NOT coalesce(`__toast_notes`, false) THEN named_struct('v', `notes`) END, true) "
                        f"OVER ({order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS `__fill_notes`")
    assert P.LAST_EVENT == "__rn = __events"
    last = P.last_event_exprs(s, ["notes"])
    assert last == ["`id`", "`Order Id`",
                    "CASE WHEN `__fill_notes` IS NULL THEN `notes` ELSE `__fill_notes`.v END AS `notes`",
                    "(coalesce(`__toast_notes`, false) AND `__fill_notes` IS NULL) AS `__toast_notes`",
                    "`qty`", "__op", COMMIT, CHANGE, "__source_ts_ms", "__events"]


# --- truncate, tombstones, schema evolution ------------------------------------------------------


def test_truncate_deletes_bulk_rows_and_rows_older_than_the_truncate():
    sql = P.truncate_sql(AWKWARD, 500, 20)
    head, where = sql.split(" WHERE ", 1)
    assert head == "DELETE FROM delta.`/lake/shop/my schema/we``ird 'tbl'`"
    names = {"`__op`": "op", **POS}
    for row in [*POSITIONS, (500, 19), (500, 20), (500, 21), (499, 99), (501, 0)]:
        assert sql_truth(where, names, op="u", commit=row[0], change=row[1]) is (row < (500, 20))
        assert sql_truth(where, names, op="r", commit=row[0], change=row[1]) is True


def test_truncate_position_round_trips_through_the_table_property():
    sql = P.truncate_property_sql(AWKWARD, 2**64 - 1, 12345678901234)
    assert sql.startswith("ALTER TABLE delta.`/lake/shop/my schema/we``ird 'tbl'` SET TBLPROPERTIES ('lakehouse.cdc.truncatedAt' = '")
    value = re.search(r"= '([^']*)'\)$", sql).group(1)
    assert P.parse_truncated_at(value) == (2**64 - 1, 12345678901234)
    assert P.parse_truncated_at(None) is None and P.parse_truncated_at("") is None


def test_tombstone_table_columns_and_merge():
    assert f"`schema` string, `table` string, `key` string, {COMMIT} decimal(38,0), {CHANGE} decimal(38,0), `__deleted_at` timestamp" == P.TOMBSTONE_DDL
    assert P.key_json(AWKWARD) == "to_json(named_struct('id', `id`, 'Order Id', `Order Id`))"
    assert P.tombstone_rows_exprs(AWKWARD)[:2] == [f"{P.sql_string(AWKWARD.schema)} AS `schema`", f"{P.sql_string(AWKWARD.table)} AS `table`"]
    # tombstones are appended (a key deleted twice has two rows): the table's are read as the latest per key
    assert P.tombstone_append_exprs() == ["`schema`", "`table`", "`key`", COMMIT, CHANGE, "current_timestamp() AS `__deleted_at`"]
    of = P.tombstones_of_sql(AWKWARD, "`cdc_7_tombstones`")
    assert of == (f"SELECT {P.TOMB_KEY}, _t.c AS {P.TOMB_COMMIT}, _t.h AS {P.TOMB_CHANGE} FROM ("
                  f"SELECT `key` AS {P.TOMB_KEY}, max(named_struct('c', {COMMIT}, 'h', {CHANGE})) AS _t FROM `cdc_7_tombstones` "
                  f"WHERE `schema` = {P.sql_string(AWKWARD.schema)} AND `table` = {P.sql_string(AWKWARD.table)} GROUP BY `key`)")


def test_the_latest_tombstone_per_table():
    assert P.tombstones_until_sql("/lake/_pipeline/tombstones/shop") == (
        f"SELECT `schema`, `table`, max(named_struct('c', {COMMIT}, 'h', {CHANGE})) AS `until` "
        "FROM delta.`/lake/_pipeline/tombstones/shop` GROUP BY `schema`, `table`")


@pytest.mark.parametrize(("has", "until", "first", "check"), [
    (False, None, (5, 5), False),      # no tombstones at all
    (True, None, (5, 5), True),        # tombstones whose latest position is unknown: always check
    (True, (10, 7), (10, 8), False),   # every event after the latest delete: the steady state
    (True, (10, 7), (10, 7), True),    # the delete itself again (a replay): checked, it is dropped
    (True, (10, 7), (9, 99), True),    # an older commit (a replay, a lagging partition)
    (True, (10, 7), None, False),      # nothing to apply
])
def test_tombstones_are_read_only_for_events_at_or_before_the_latest_delete(has, until, first, check):
    spec = dataclasses.replace(AWKWARD, has_tombstones=has, tombstones_until=until)
    assert P.needs_tombstone_check(spec, first) is check


@pytest.mark.parametrize(("has", "until", "last_delete", "after"), [
    (False, None, (7, 1), (7, 1)),    # the table's first tombstones
    (True, (9, 0), (7, 1), (9, 0)),   # an older delete (a replay) leaves the latest where it is
    (True, (9, 0), (9, 4), (9, 4)),
    (True, None, (9, 4), None),       # unknown stays unknown: every apply keeps checking
])
def test_deletes_move_the_latest_tombstone_forward(has, until, last_delete, after):
    spec = P.after_deletes(dataclasses.replace(AWKWARD, has_tombstones=has, tombstones_until=until), last_delete)
    assert spec.has_tombstones and spec.tombstones_until == after


@pytest.mark.parametrize(("hours", "seconds"), [(168, 604800), (0.5, 1800), (0, 0)])
def test_tombstone_expiry(hours, seconds):
    assert P.tombstone_expiry_sql("/t", hours) == (
        f"DELETE FROM delta.`/t` WHERE `__deleted_at` < current_timestamp() - make_dt_interval(0, 0, 0, {seconds})")


def test_add_columns_quotes_names():
    assert P.add_columns_sql(AWKWARD, [("New Col", "decimal(12,2)"), ("we`ird", "array<string>")]) == (
        "ALTER TABLE delta.`/lake/shop/my schema/we``ird 'tbl'` ADD COLUMNS (`New Col` decimal(12,2), `we``ird` array<string>)")


def test_table_spec_helpers():
    s = spec()
    assert s.name == "public.orders"
    assert s.lake_type("price") == "decimal(12,2)" and s.lake_type("nope") is None


# --- the stream decodes whatever the bulk path produced ----------------------------------------------


def pg_column(typname: str, source_type: str, category: str = "N", elem: str | None = None) -> Column:
    return Column("c", source_type, True, 2, (("typname", typname), ("typtype", "b"), ("typcategory", category), ("elem_typname", elem)))


def dbz(kind: str, source_type: str, name: str | None = None, length: int | None = None, scale: int | None = None, **extra) -> dict:
    params = {"__debezium.source.column.type": source_type}
    if length is not None:
        params |= {"__debezium.source.column.length": str(length), "__debezium.source.column.scale": str(scale or 0)}
    schema = {"type": kind, "optional": True, "parameters": params, **extra}
    if name:
        schema |= {"name": name, "version": 1}
    return schema


BULK_AND_DEBEZIUM = [  # (the bulk path's catalog column, the field Debezium 3.x sends for the same column)
    (pg_column("int2", "smallint"), dbz("int16", "INT2", length=5)),
    (pg_column("int8", "bigint"), dbz("int64", "INT8", length=19)),
    (pg_column("numeric", "numeric(12,2)"), dbz("string", "NUMERIC", length=12, scale=2)),
    (pg_column("float4", "real"), dbz("float", "FLOAT4", length=8, scale=8)),
    (pg_column("text", "text", "S"), dbz("string", "TEXT", length=2147483647)),
    (pg_column("bool", "boolean", "B"), dbz("boolean", "BOOL", length=1)),
    (pg_column("date", "date", "D"), dbz("int32", "DATE", "io.debezium.time.Date", 13)),
    (pg_column("timestamp", "timestamp without time zone", "D"), dbz("int64", "TIMESTAMP", "io.debezium.time.MicroTimestamp", 29, 6)),
    (pg_column("timestamptz", "timestamp with time zone", "D"), dbz("string", "TIMESTAMPTZ", "io.debezium.time.ZonedTimestamp", 35, 6)),
    (pg_column("time", "time without time zone", "D"), dbz("int64", "TIME", "io.debezium.time.MicroTime", 15, 6)),
    (pg_column("interval", "interval", "T"), dbz("string", "INTERVAL", "io.debezium.time.Interval", 49, 6)),
    (pg_column("uuid", "uuid", "U"), dbz("string", "UUID", "io.debezium.data.Uuid", 2147483647)),
    (pg_column("inet", "inet", "I"), dbz("string", "INET", length=2147483647)),
    (pg_column("money", "money"), dbz("string", "MONEY", length=2147483647)),
    (pg_column("jsonb", "jsonb", "U"), dbz("string", "JSONB", "io.debezium.data.Json", 2147483647)),
    (pg_column("bytea", "bytea", "U"), dbz("bytes", "BYTEA", length=2147483647)),
    (pg_column("bit", "bit(1)", "V"), dbz("boolean", "BIT", "io.debezium.data.Bits", 1)),
    (pg_column("_int4", "integer[]", "A", "int4"), dbz("array", "_INT4", length=10, items={"type": "int32", "optional": True})),
    (pg_column("_numeric", "numeric(6,2)[]", "A", "numeric"), dbz("array", "_NUMERIC", length=6, scale=2, items={"type": "string", "optional": True})),
    (pg_column("_uuid", "uuid[]", "A", "uuid"),
     dbz("array", "_UUID", length=2147483647, items={"type": "string", "optional": True, "name": "io.debezium.data.Uuid", "version": 1})),
    (pg_column("oid", "oid"), dbz("int64", "OID", length=10)),
    (pg_column("bit", "bit(8)", "V"), dbz("bytes", "BIT", "io.debezium.data.Bits", 8)),  # the bulk path's text, from Debezium's bytes
]


@pytest.mark.parametrize(("column", "field"), BULK_AND_DEBEZIUM,
                         ids=lambda v: v.source_type if isinstance(v, Column) else v["parameters"]["__debezium.source.column.type"])
def test_every_event_of_a_bulk_loaded_column_type_can_be_decoded(column, field):
    lake_type = column_read(column).spark_type
    s = spec(columns=(("id", "int"), ("c", lake_type)))
    vplan = P.version_plan(s, {"id": INT4, "c": field})
    assert vplan.errors == (), f"{column.source_type} -> {lake_type}: {vplan.errors}"


def test_messages_split_into_schema_and_payload_and_back():
    """The schema block is split off with string functions and put back for dead letters (pure text check
    of the SQL pieces; the Spark round trip runs in the integration tests' dead-letter checks)."""
    assert P.SEPARATOR == ',"payload":'
    has_block = "(startswith(v, '{\"schema\":') AND locate(',\"payload\":', v) > 0)"  # a compact event may contain ,"payload":
    assert P.schema_id_sql("v") == f"CASE WHEN {has_block} THEN xxhash64(substring_index(v, ',\"payload\":', 1)) ELSE 0 END"
    assert P.body_sql("v").endswith("ELSE v END")
    assert P.raw_message_sql({}) == "__raw"
    assert P.raw_message_sql({0: "x", 7: '{"schema":{"a":\'b\'}'}) == "CASE __schema_id WHEN 7 THEN concat('{\"schema\":{\"a\":\\'b\\'}', ',', substring(__raw, 2)) ELSE __raw END"
