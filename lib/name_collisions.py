"""Tables of one source whose names collide: the same Kafka topic, or the same lake path on case-insensitive
storage (pure: names in, collisions and their error message out).

- Kafka topic: Debezium names a table's topic ``<topic.prefix>.<schema>.<table>`` (SQL Server:
  ``<topic.prefix>.<database>.<schema>.<table>``) with every character outside ``[a-zA-Z0-9._-]`` replaced
  by ``_`` (``lib.cdc.event_format.sanitize_topic``), so ``"order items"`` and ``order_items`` write to the
  same topic and the stream could not tell their events apart.
- Lake path: ``<lake.root>/<source>/<schema>/<table>`` keeps the names as the source spells them; storage
  that compares names ignoring case (ADLS Gen2 through some clients, macOS, Windows) holds one directory for
  ``Orders`` and ``orders``, so two tables would write one Delta table. Names are compared after Unicode
  NFC normalization too (macOS stores names decomposed).

The bulk load refuses them when it plans (lib/bulk/runner.py), the CDC stream when it starts
(jobs/cdc_stream.py): a config error, exit 2.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from lib.cdc.event_format import sanitize_topic
from lib.config.model import CatalogConfig, SourceConfig
from lib.errors import ConfigError
from lib.lake.catalog import catalog_table
from lib.lake.catalog import collisions as catalog_collisions
from lib.selection import matches

TOPIC_ROUTER = "io.debezium.transforms.ByLogicalTableRouter"
CollisionKind = Literal["topic", "lake path", "catalog name"]


@dataclass(frozen=True)
class Collision:
    """Two or more tables (``(schema, table)`` as the source spells them, sorted) sharing one topic or lake path."""

    kind: CollisionKind
    target: str  # the topic name, or the lake path of the first table
    tables: tuple[tuple[str, str], ...]


def debezium_topic(topic_prefix: str, schema: str, table: str, database: str | None = None) -> str:
    """The topic Debezium's default naming gives a table (``database``: SQL Server's, which its topics carry)."""
    parts = (topic_prefix, database, schema, table) if database else (topic_prefix, schema, table)
    return sanitize_topic(".".join(parts))


def lake_path(lake_root: str, source: str, schema: str, table: str) -> str:
    """``<lake.root>/<source>/<schema>/<table>`` (lib.lake.paths.table_path, without its checks: shown only)."""
    return f"{lake_root.rstrip('/')}/{source}/{schema}/{table}"


def _fold(name: str) -> str:
    """A name as case-insensitive storage compares it."""
    return unicodedata.normalize("NFC", name).lower()


def find_collisions(
    source: str,
    topic_prefix: str | None,
    tables: Iterable[tuple[str, str]],
    *,
    database: str | None = None,
    lake_root: str = "<lake.root>",
    catalog: CatalogConfig | None = None,
) -> list[Collision]:
    """The collisions among ``tables`` (``(schema, table)``) of ``source``: tables sharing a Debezium topic
    (only with a ``topic_prefix``: ``None`` when the source has no ``cdc``), then tables whose lake paths are
    equal ignoring case, then (with ``catalog``) tables registered under one folded catalog name
    (lib/lake/catalog.py). Each group once, its tables sorted; groups in order of their first table."""
    unique = sorted(set(tables))
    out: list[Collision] = []
    if topic_prefix is not None:
        by_topic: dict[str, list[tuple[str, str]]] = {}
        for schema, table in unique:
            by_topic.setdefault(debezium_topic(topic_prefix, schema, table, database), []).append((schema, table))
        out += [Collision("topic", topic, tuple(group)) for topic, group in by_topic.items() if len(group) > 1]
    by_path: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for schema, table in unique:
        by_path.setdefault((_fold(schema), _fold(table)), []).append((schema, table))
    out += [
        Collision("lake path", lake_path(lake_root, source, *group[0]), tuple(group))
        for group in by_path.values() if len(group) > 1
    ]
    if catalog is not None:
        named = [((schema, table), catalog_table(catalog, source, schema, table, "")) for schema, table in unique]
        out += [Collision("catalog name", name, tuple(group)) for name, group in catalog_collisions(named)]
    return sorted(out, key=lambda c: (c.tables[0], c.kind))


def quoted(schema: str, table: str) -> str:
    """``"schema"."table"``: the names exactly as the source spells them (SQL identifiers, ``"`` doubled), so
    ``"a"."b.c"`` and ``"a.b"."c"`` stay apart."""
    return ".".join('"' + name.replace('"', '""') + '"' for name in (schema, table))


def _escaped(name: str) -> str:
    """A glob matching ``name`` only (glob characters bracketed)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def exclude_glob(table: tuple[str, str], others: Iterable[tuple[str, str]]) -> str:
    """A ``sources.<name>.exclude`` glob that matches ``table`` and none of ``others``: ``schema.table``, or the
    table's name alone where ``schema.table`` is ambiguous (``a.b.c`` is both ``"a"."b.c"`` and ``"a.b"."c"``)."""
    candidates = (_escaped(f"{table[0]}.{table[1]}"), _escaped(table[1]))
    for glob in candidates:
        if not any(matches(schema, name, [glob]) for schema, name in others):
            return glob
    return candidates[0]


def collision_message(source: str, collision: Collision) -> str:
    """What collides, on what, and the way out (no value of the source's data, only its names)."""
    names = [quoted(*t) for t in collision.tables]
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    # the example keeps a table whose name the topic spells as it is (else the first) and excludes the others
    keep = next((t for t in collision.tables if collision.kind == "topic" and sanitize_topic(f"{t[0]}.{t[1]}") == f"{t[0]}.{t[1]}"),
                collision.tables[0])
    drop = [exclude_glob(t, [keep]) for t in collision.tables if t != keep]
    exclude = (f"exclude {'one' if len(drop) == 1 else 'all but one'} of them with sources.{source}.exclude "
               f"(e.g. add {', '.join(json.dumps(g) for g in drop)} to it)")
    if collision.kind == "topic":
        return (f"tables {listed} would share the Kafka topic {collision.target} (Debezium replaces every character "
                f"outside [a-zA-Z0-9._-] with '_'): {exclude}, or route one table's topic elsewhere with a Debezium "
                f"topic routing SMT ({TOPIC_ROUTER})")
    if collision.kind == "catalog name":
        return (f"tables {listed} would be registered under one catalog name {collision.target} (catalog names are "
                f"lower case letters, digits and '_'; others become '_'): {exclude}, or remove the catalog section")
    return (f"tables {listed} would share the lake path {collision.target} on storage that ignores case "
            f"(ADLS Gen2 through some clients, macOS, Windows): {exclude}")


def touching(collisions: Iterable[Collision], only: Sequence[str] | None) -> list[Collision]:
    """The collisions with a table matching the ``only`` globs (``--tables``; empty or None: all): a run that
    reads or writes one table of a colliding group is hit by the collision, a run that touches none is not."""
    return [c for c in collisions if not only or any(matches(schema, table, only) for schema, table in c.tables)]


def collisions_error(source: str, collisions: Sequence[Collision], note: str = "") -> ConfigError:
    """One config error (exit 2, one line) naming every collision."""
    return ConfigError(f"sources.{source}", "; ".join(collision_message(source, c) for c in collisions) + note)


def topic_database(source: SourceConfig) -> str | None:
    """The database part of the source's topic names: SQL Server's connector writes
    ``<prefix>.<database>.<schema>.<table>`` (lib/dialects/sqlserver/cdc_events.py), the others none."""
    return source.connection.database if source.type == "sqlserver" else None


def source_collisions(source: SourceConfig, tables: Iterable[tuple[str, str]], lake_root: str = "<lake.root>") -> list[Collision]:
    """:func:`find_collisions` for a configured source: its topic prefix when it has ``cdc``."""
    prefix = source.cdc.topic_prefix if source.cdc is not None else None
    return find_collisions(source.name, prefix, tables, database=topic_database(source), lake_root=lake_root, catalog=source.catalog)
