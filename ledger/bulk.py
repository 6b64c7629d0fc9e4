"""Bulk loading: many records in a few statements per batch, history kept.

An ordinary write does its bookkeeping in per-row triggers: revision numbers,
history snapshots, change-feed entries and integrity checks. At millions of
rows those triggers would cost more than the rows themselves, so a bulk load
switches them off for its own transactions (`session_replication_role =
replica`, which needs a superuser or, from PostgreSQL 15, `GRANT SET ON
PARAMETER session_replication_role`) and does the same work once per batch,
set-based:

- each row is stored at revision 1, set by the batch's transaction;
- one history context per batch (`via: import`, the command, the batch number)
  and one `insert` snapshot per row, resources and child rows alike, pointing
  at it: the history endpoints show the row as created by that import;
- one change-feed entry per created resource, in the batch's transaction,
  given its place in the feed by the batch's last statement
  (`el_feed_commit_seq()`: the deferred trigger that orders ordinary writes
  does not run here), so the feed's commit lock is held only from there to
  the commit;
- the checks the triggers make are made on the whole batch before it is
  written, as each table declares them (`Table.checks`: in the event data,
  every event and statement cites evidence, every quote is the source's text
  at its offsets, every reference points at an existing row). A batch that
  fails a check writes nothing.

Rows are streamed with COPY into temporary staging tables, then moved into
place with one INSERT ... SELECT per table that also writes the snapshots and
feed entries (a data-modifying WITH: `recorded`, the rule merges use too for
the rows they move and the records they touch). Computed columns
(`Table.computed`, such as a digest of a text) are filled in the same statement.

For a load that at least doubles a table, `rebuild_indexes()` drops the
secondary indexes first and builds them again afterwards, which is several
times faster than maintaining them row by row (what pg_restore does too);
the whole load is then one transaction, so that a failure leaves the
database, indexes included, as it was.
"""

import contextlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import cast

from django.db import connection, models, transaction
from psycopg import sql

from ledger.history import snapshot_model
from ledger.triggers import quote_name


class BulkLoadError(Exception):
    """A batch failed a check; nothing of it was written."""


@dataclass(frozen=True)
class Table:
    """A table filled by the bulk loader.

    `columns` are what the caller supplies for each row, in order; `computed`
    maps further columns to SQL expressions over them; `resource` is the name
    of the table in the change feed, for resources (which also carry revisions).
    `checks` are the rules the table's triggers would enforce, made on the
    whole batch instead: (problem, query) pairs, each query selecting a row
    that breaks the rule, over the staging tables (`bulk_<table>`) and the
    stored ones.
    """

    model: type[models.Model]
    columns: tuple[str, ...]
    computed: dict[str, str] = field(default_factory=dict)
    resource: str | None = None
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.model._meta.db_table

    @property
    def stage(self) -> str:
        return f"bulk_{self.name}"

    @property
    def snapshot_table(self) -> str:
        return snapshot_model(self.model)._meta.db_table


NOW = "now()"
REVISION = {"revision": "1", "revised_tx": "txid_current()"}
TIMESTAMPS = {"created_at": NOW, "updated_at": NOW}


class BulkLoader:
    """Loads batches of rows into `tables` (in the order given: parents first).

    Each call of `load(rows)` is one transaction: `rows` maps a table name to
    the tuples for it. Ids of resources are chosen by the caller, from
    `reserve_ids()`, so that child rows can refer to them.
    """

    def __init__(self, tables: list[Table], *, metadata: dict):
        self.tables = tables
        self.metadata = metadata
        self.batches = 0

    # Ids --------------------------------------------------------------------

    @staticmethod
    def reserve_ids(model, count: int) -> list[int]:
        """`count` new ids from the table's identity sequence, never handed out again."""
        if count == 0:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [model._meta.db_table, count],
            )
            return [row[0] for row in cursor.fetchall()]

    # Loading ------------------------------------------------------------------

    def load(self, rows: dict[str, Iterable[tuple]]) -> dict[str, int]:
        """Write one batch; returns the number of rows stored per table."""
        self.batches += 1
        counts = {}
        with transaction.atomic(), connection.cursor() as cursor:
            # A crash loses at most the batches of the last moments; none is half-written.
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("SET LOCAL statement_timeout = 0")  # a batch may take a while
            self._bypass_row_triggers(cursor)
            context_id = self._record_context(cursor)
            for table in self.tables:
                self._stage(cursor, table, rows.get(table.name, ()))
            self._check(cursor)
            for table in self.tables:
                counts[table.name] = self._move(cursor, table, context_id)
            # Emptied at commit too; but the batch may be part of a larger transaction.
            stages = sql.SQL(", ").join(sql.Identifier(t.stage) for t in self.tables)
            cursor.execute(sql.SQL("TRUNCATE {}").format(stages))
            # Last: the feed's commit lock is held from here to the commit only.
            cursor.execute(
                "UPDATE events_change SET commit_seq = (SELECT el_feed_commit_seq()) "
                "WHERE txid = txid_current() AND commit_seq IS NULL"
            )
            cursor.execute("SET LOCAL session_replication_role = origin")
        return counts

    def _bypass_row_triggers(self, cursor) -> None:
        try:
            with transaction.atomic():
                cursor.execute("SET LOCAL session_replication_role = replica")
        except Exception as exc:
            raise BulkLoadError(
                "Bulk loading needs a database role that may set session_replication_role "
                "(a superuser, or GRANT SET ON PARAMETER session_replication_role TO <role>). "
                f"The database said: {exc}"
            ) from None

    def _record_context(self, cursor) -> uuid.UUID:
        context_id = uuid.uuid4()
        metadata = {**self.metadata, "via": "import", "batch": self.batches}
        cursor.execute(
            "INSERT INTO pghistory_context (id, created_at, updated_at, metadata) "
            "VALUES (%s, now(), now(), %s::jsonb)",
            [context_id, _json(metadata)],
        )
        return context_id

    def _stage(self, cursor, table: Table, rows: Iterable[tuple]) -> None:
        columns = sql.SQL(", ").join(map(sql.Identifier, table.columns))
        cursor.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                "SELECT {columns} FROM {table} WITH NO DATA"
            ).format(
                stage=sql.Identifier(table.stage),
                columns=columns,
                table=sql.Identifier(table.name),
            )
        )
        copy = sql.SQL("COPY {stage} ({columns}) FROM STDIN").format(
            stage=sql.Identifier(table.stage), columns=columns
        )
        with cursor.cursor.copy(copy) as writer:
            for row in rows:
                writer.write_row(row)
        # Statistics, so that the checks and moves below get hash joins.
        cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table.stage)))

    def _move(self, cursor, table: Table, context_id: uuid.UUID) -> int:
        """Insert the staged rows, their snapshots and, for resources, their
        feed entries, in one statement."""
        expressions = {**table.computed}
        if table.resource:
            expressions.update(REVISION)
        target = [*table.columns, *expressions]
        select = [quote_name(c) for c in table.columns] + list(expressions.values())
        insert = (
            f"INSERT INTO {quote_name(table.name)} ({', '.join(map(quote_name, target))}) "
            f"SELECT {', '.join(select)} FROM {quote_name(table.stage)}"
        )
        query = recorded(
            insert, table.model, label="insert", context="%s::uuid", resource=table.resource
        )
        cursor.execute(query, [context_id])
        return cursor.fetchone()[0]

    # Checks -------------------------------------------------------------------

    def _check(self, cursor) -> None:
        for problem, query in (check for table in self.tables for check in table.checks):
            cursor.execute(query + " LIMIT 1")
            row = cursor.fetchone()
            if row is not None:
                raise BulkLoadError(
                    f"{problem}: {row}. Nothing of batch {self.batches} was written."
                )


def snapshot_columns(model: type[models.Model]) -> list[str]:
    """The columns of `model` its history snapshots copy (the snapshot
    model's own, `pgh_*`, aside)."""
    # A concrete field always has a column.
    fields = snapshot_model(model)._meta.concrete_fields
    return [cast(str, f.column) for f in fields if not f.name.startswith("pgh_")]


def recorded(
    statement: str,
    model: type[models.Model],
    *,
    label: str,
    context: str,
    resource: str | None = None,
) -> str:
    """`statement`, an INSERT or UPDATE of `model`'s table (without
    RETURNING), made one statement (a data-modifying WITH) with what the row
    triggers write for each row it writes, for writers that switch those
    triggers off and do their work set-based (the bulk loader, merges): the
    row's `label` snapshot ("insert", "update") in the history context
    `context` (an SQL expression for the context's id, evaluated once), and,
    if `resource` names the model in the change feed, the row's feed entry
    at its revision (`create` for a new row, `update` otherwise; the feed's
    commit sequence is given at the commit, as for any entry). The statement
    selects the number of rows written."""
    if label not in ("insert", "update") or not re.fullmatch(r"[a-z_]*", resource or ""):
        raise ValueError(f"Not a snapshot label and resource: {label!r}, {resource!r}.")
    columns = snapshot_columns(model)
    returned = ", ".join(map(quote_name, columns))
    query = (
        f"WITH context AS MATERIALIZED (SELECT {context} AS id), "
        f"written AS ({statement} RETURNING {returned}), "
        f"snapshots AS (INSERT INTO {quote_name(snapshot_model(model)._meta.db_table)} "
        f"(pgh_created_at, pgh_label, pgh_context_id, pgh_obj_id, {returned}) "
        f"SELECT now(), '{label}', context.id, written.id, "
        f"{', '.join(f'written.{quote_name(c)}' for c in columns)} FROM written, context)"
    )
    if resource:
        action = "create" if label == "insert" else "update"
        query += (
            ", feed AS (INSERT INTO events_change (resource, object_id, action, revision, txid, "
            f"changed_at) SELECT '{resource}', id, '{action}', revision, txid_current(), now() "
            "FROM written)"
        )
    return query + " SELECT count(*) FROM written"


@contextlib.contextmanager
def rebuild_indexes(tables: list[str]) -> Iterator[list[str]]:
    """Drop the secondary (non-unique) indexes of `tables` for the duration of
    a large load and build them again afterwards. Use it inside the load's
    transaction: a load that fails rolls back, and the indexes with it.
    Yields the names of the indexes dropped."""
    if not connection.in_atomic_block:
        raise RuntimeError("rebuild_indexes() must run inside a transaction.")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT i.indisunique "
            "ORDER BY 1",
            [tables],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield [name for name, _ in indexes]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cursor.execute("SET LOCAL statement_timeout = 0")  # building an index may take minutes
        for _, definition in indexes:
            cursor.execute(definition)
        for table in tables:
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))
