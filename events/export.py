"""Streaming export of events as CSV or JSON Lines.

PostgreSQL writes the file: `COPY (SELECT ...) TO STDOUT` produces the rows
already formatted, and the server passes its chunks on as they come, so an
export of millions of rows runs at the database's pace in constant memory.
Each row is flat: the event's fields, its place, and its participants and
evidence as JSON arrays (one JSON object per line in JSON Lines; JSON text in
their CSV cells).

Beside it, the dyadic CSV of events (`dyadic_query`: one row per pair of an
event's sides, as ACLED's dyadic export) and the exports of statements, actors
and affiliations (`TABLE_EXPORTS`), made the same way.
"""

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from psycopg import ClientCursor, sql
from psycopg.abc import Buffer

from events.models import QUAD_CLASS
from events.representations import EVENT_COLUMNS, _url_template, iso_sql
from ledger.routing import reading as connection  # the database this request reads

logger = logging.getLogger(__name__)

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "dyadic": "text/csv; charset=utf-8",
}
# The file name's ending, where it is not the format's name.
EXTENSIONS = {"dyadic": "dyadic.csv"}

# The export's columns, in order. Each is one of the event's read columns
# (EVENT_COLUMNS, events/representations.py), shown as it is, unless the
# export makes it itself (`_own_columns`).
COLUMN_NAMES = [
    "id",
    "url",
    "revision",
    "type",
    "quad_class",
    "mode",
    "context",
    "status",
    "title",
    "summary",
    "date_start",
    "date_end",
    "date_precision",
    "place_id",
    "place_name",
    "place_country",
    "place_text",
    "participants",
    "evidence",
    "review_status",
    "created_at",
    "updated_at",
]
# Columns of JSON text, embedded as JSON (not as strings) in JSON Lines.
JSON_LISTS = {"participants", "evidence"}

# CSV cells are text: contexts joined by semicolons.
CSV_OVERRIDES = {"context": "array_to_string(e.context, ';')"}

# A CSV cell that begins with one of these is a formula to a spreadsheet
# (`=HYPERLINK(...)`, `+1`, `-2+3`, `@SUM(...)`; tab and carriage return, which
# some spreadsheets skip before reading one). As OWASP recommends, such a cell
# gets a leading single quote, which spreadsheets show as text. Every column
# is guarded but these, which PostgreSQL writes as digits: ids, counts, dates.
# JSON Lines is data for programs, not spreadsheets: it is left as it is.
CSV_FORMULA_STARTS = "('=', '+', '-', '@', E'\\t', E'\\r')"
CSV_UNGUARDED = {"id", "revision", "place_id", "date_start", "date_end"}

# Participants and evidence as JSON text, concatenated rather than built with
# json_build_object and json_agg: a third less time on a full export. Roles
# are fixed words; names and quotes are escaped by to_json().
PARTICIPANTS = (
    "SELECT ep.event_id, '[' || string_agg('{{\"actor\":' || ep.actor_id || "
    "',\"name\":' || to_json(a.name)::text || ',\"role\":\"' || ep.role || '\"}}', ',' "
    "ORDER BY ep.id) || ']' AS list "
    "FROM events_eventparticipant ep JOIN actors_actor a ON a.id = ep.actor_id "
    "{where}GROUP BY ep.event_id"
)
EVIDENCE = (
    "SELECT v.event_id, '[' || string_agg('{{\"source\":' || v.source_id || "
    '\',"start":\' || v.start || \',"end":\' || v."end" || \',"quote":\' || '
    "to_json(v.quote)::text || '}}', ',' ORDER BY v.source_id, v.start, v.\"end\", v.id) "
    "|| ']' AS list FROM events_evidence v {where}GROUP BY v.event_id"
)


def _quad_class_sql() -> str:
    cases = " ".join(f"WHEN '{t}' THEN '{q}'" for t, q in QUAD_CLASS.items())
    return f"CASE e.type {cases} END"


def _own_columns(origin: str) -> dict[str, str]:
    """The columns the export makes itself: what the API derives in Python
    (the URL, the quad class), and participants and evidence aggregated in
    one pass over the table (`export_query`) rather than per row; its
    participants name their actor by id and name."""
    event_url = sql.Literal(origin + reverse("event-list")).as_string(connection.connection)
    return {
        "url": f"{event_url} || e.id || '/'",
        "quad_class": _quad_class_sql(),
        "participants": "coalesce(pa.list, '[]')",
        "evidence": "coalesce(ev.list, '[]')",
    }


def _expressions(fmt: str, origin: str) -> dict[str, str]:
    own = _own_columns(origin)
    expressions = {name: own.get(name) or EVENT_COLUMNS[name] for name in COLUMN_NAMES}
    if fmt == "csv":
        expressions.update(CSV_OVERRIDES)
        for name, expression in expressions.items():
            if name not in CSV_UNGUARDED:
                expressions[name] = csv_guarded(expression)
    return expressions


def csv_guarded(expression: str) -> str:
    """The text `expression` as a CSV cell that no spreadsheet takes for a formula."""
    return (
        f"CASE WHEN left({expression}, 1) IN {CSV_FORMULA_STARTS} "
        f"THEN '''' || {expression} ELSE {expression} END"
    )


def export_query(
    ids_sql: str | None,
    ids_params,
    fmt: str,
    origin: str,
    *,
    id_range: tuple[int, int] | None = None,
    header: bool = True,
) -> str:
    """The COPY statement of an export of the events whose ids `ids_sql`
    selects (every event when None), with its parameters bound (COPY takes
    none of its own); `id_range` (inclusive) narrows it to a slice of ids."""
    where = id_conditions(ids_sql, ids_params, id_range)
    expressions = _expressions(fmt, origin)
    if fmt == "csv":
        select = ", ".join(f"{e} AS {n}" for n, e in expressions.items())
    else:
        select = f"row_to_json(r)::text FROM (SELECT {_jsonl_select(expressions, JSON_LISTS)}"
    # Children are aggregated per event in id order and merged with the events,
    # rather than looked up row by row: twice as fast on a full export.
    query = (
        f"SELECT {select} FROM events_event e "
        "LEFT JOIN events_place p ON p.id = e.place_id "
        f"LEFT JOIN ({PARTICIPANTS.format(where=where('ep.event_id'))}) pa "
        "ON pa.event_id = e.id "
        f"LEFT JOIN ({EVIDENCE.format(where=where('v.event_id'))}) ev ON ev.event_id = e.id "
        f"{where('e.id')}ORDER BY e.id"
    )
    if fmt != "csv":
        query += ") r"
    return _copy(query, fmt, header=header)


def id_conditions(
    ids_sql: str | None, ids_params, id_range: tuple[int, int] | None = None
) -> Callable[[str], str]:
    """A function that gives the WHERE clause (empty, or ending with a space)
    keeping the ids `ids_sql` selects (any id when None), within `id_range`
    (inclusive) when given, for the id column it is called with. The
    parameters are bound here: COPY takes none of its own."""
    connection.ensure_connection()
    conditions = []
    if ids_sql is not None:
        with ClientCursor(connection.connection) as cursor:
            conditions.append(f"IN ({cursor.mogrify(ids_sql, ids_params)})")
    if id_range is not None:
        conditions.append(f"BETWEEN {int(id_range[0])} AND {int(id_range[1])}")

    def where(column: str) -> str:
        return "".join(
            f"{'WHERE' if i == 0 else 'AND'} {column} {c} " for i, c in enumerate(conditions)
        )

    return where


def _csv_select(expressions: Mapping[str, str], unguarded: Iterable[str]) -> str:
    """The SELECT list of a CSV: every column formula-safe but `unguarded`."""
    return ", ".join(
        f"{e if n in unguarded else csv_guarded(e)} AS {n}" for n, e in expressions.items()
    )


def _jsonl_select(expressions: Mapping[str, str], json_columns: Iterable[str]) -> str:
    return ", ".join(
        f"({e})::json AS {n}" if n in json_columns else f"{e} AS {n}"
        for n, e in expressions.items()
    )


def _copy(query: str, fmt: str, *, header: bool = True) -> str:
    """The COPY of `query`'s rows: CSV with a header line (`header`), or for
    JSON Lines the one JSON text column of `query` as it is."""
    if fmt == "jsonl":
        # CSV with a quote and delimiter JSON never holds unescaped: the text as it is.
        options = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"
    else:
        options = f"FORMAT csv, HEADER {'true' if header else 'false'}"
    return f"COPY ({query}) TO STDOUT ({options})"


# The dyadic export of events ----------------------------------------------
#
# One row per event per pair of sides, as ACLED's dyadic export: side 1 is
# the event's initiators, side 2 its targets, and an event has a row for each
# (initiator, target) pair. An event with initiators and no target has a row
# per initiator (side 2 empty), and one with targets and no initiator a row
# per target (side 1 empty). An event with neither has a row for each
# unordered pair of its participants (the earlier listed one as side 1), or
# one row with side 2 empty when it has a single participant. An event with
# none of these has one row with both sides empty: every event is there.
# Mediators, and participants when the event has initiators or targets, are
# the event's associated actors, on each of its rows. docs/api.md has the
# columns.

_LINKS = "events_eventparticipant"
DYADIC_PAIRS = f"""(
  SELECT i.actor_id AS actor1, i.role AS role1, t.actor_id AS actor2, t.role AS role2,
         i.id AS o1, t.id AS o2
    FROM {_LINKS} i JOIN {_LINKS} t ON t.event_id = i.event_id AND t.role = 'target'
   WHERE i.event_id = e.id AND i.role = 'initiator'
  UNION ALL
  SELECT i.actor_id, i.role, NULL, NULL, i.id, 0 FROM {_LINKS} i
   WHERE i.event_id = e.id AND i.role = 'initiator'
     AND NOT EXISTS (SELECT FROM {_LINKS} t WHERE t.event_id = e.id AND t.role = 'target')
  UNION ALL
  SELECT NULL, NULL, t.actor_id, t.role, 0, t.id FROM {_LINKS} t
   WHERE t.event_id = e.id AND t.role = 'target'
     AND NOT EXISTS (SELECT FROM {_LINKS} i WHERE i.event_id = e.id AND i.role = 'initiator')
  UNION ALL
  SELECT p1.actor_id, p1.role, p2.actor_id, p2.role, p1.id, coalesce(p2.id, 0)
    FROM {_LINKS} p1 LEFT JOIN {_LINKS} p2
      ON p2.event_id = e.id AND p2.role = 'participant' AND p2.id > p1.id
   WHERE p1.event_id = e.id AND p1.role = 'participant'
     AND NOT EXISTS (SELECT FROM {_LINKS} s
                      WHERE s.event_id = e.id AND s.role IN ('initiator', 'target'))
     AND (p2.id IS NOT NULL OR NOT EXISTS (SELECT FROM {_LINKS} o WHERE o.event_id = e.id
                                           AND o.role = 'participant' AND o.id <> p1.id))
)"""
DYADIC_ASSOCIATED = f"""(
  SELECT string_agg(x.actor_id::text, ';' ORDER BY x.id) AS ids,
         string_agg(xa.name, '; ' ORDER BY x.id) AS names
    FROM {_LINKS} x JOIN actors_actor xa ON xa.id = x.actor_id
   WHERE x.event_id = e.id AND (x.role = 'mediator' OR (x.role = 'participant' AND EXISTS (
         SELECT FROM {_LINKS} s WHERE s.event_id = e.id AND s.role IN ('initiator', 'target'))))
)"""


def _side(n: int) -> dict[str, str]:
    return {
        f"actor{n}_id": f"d.actor{n}",
        f"actor{n}_name": f"a{n}.name",
        f"actor{n}_kind": f"a{n}.kind",
        f"actor{n}_country": f"a{n}.country",
        f"actor{n}_sector": f"a{n}.sector",
        f"actor{n}_role": f"d.role{n}",
    }


def dyadic_columns(origin: str) -> dict[str, str]:
    """The dyadic CSV's columns, in order, each with its SQL over `e` (the
    event), `p` (its place), `d` (the pair), `a1`, `a2` (its actors) and `x`
    (the associated actors)."""
    own = _own_columns(origin)
    return {
        "event_id": "e.id",
        "event_url": own["url"],
        "type": "e.type",
        "quad_class": own["quad_class"],
        "mode": "e.mode",
        "context": CSV_OVERRIDES["context"],
        "status": "e.status",
        "title": "e.title",
        "date_start": "e.date_start",
        "date_end": "e.date_end",
        "date_precision": "e.date_precision",
        "place_id": "e.place_id",
        "place_name": "p.name",
        "place_country": "p.country",
        **_side(1),
        **_side(2),
        "associated_actor_ids": "x.ids",
        "associated_actors": "x.names",
        "review_status": "e.review_status",
    }


DYADIC_UNGUARDED = {
    "event_id",
    "place_id",
    "date_start",
    "date_end",
    "actor1_id",
    "actor2_id",
    "associated_actor_ids",
}


def dyadic_query(
    ids_sql: str | None,
    ids_params,
    origin: str,
    *,
    id_range: tuple[int, int] | None = None,
    header: bool = True,
) -> str:
    """The COPY statement of the dyadic CSV of the events `ids_sql` selects
    (every event when None), within `id_range` when given."""
    where = id_conditions(ids_sql, ids_params, id_range)
    query = (
        f"SELECT {_csv_select(dyadic_columns(origin), DYADIC_UNGUARDED)} FROM events_event e "
        "LEFT JOIN events_place p ON p.id = e.place_id "
        f"LEFT JOIN LATERAL {DYADIC_PAIRS} d ON true "
        "LEFT JOIN actors_actor a1 ON a1.id = d.actor1 "
        "LEFT JOIN actors_actor a2 ON a2.id = d.actor2 "
        f"LEFT JOIN LATERAL {DYADIC_ASSOCIATED} x ON true "
        f"{where('e.id')}ORDER BY e.id, d.o1, d.o2"
    )
    return _copy(query, "csv", header=header)


# The exports of statements, actors and affiliations ------------------------


def _evidence_json(column: str) -> str:
    """The evidence citing the row whose id is t.id, by its `column`, as a
    JSON array in the order the API lists it (as EVIDENCE does for events)."""
    return (
        "(SELECT coalesce('[' || string_agg('{\"source\":' || v.source_id || "
        '\',"start":\' || v.start || \',"end":\' || v."end" || \',"quote":\' || '
        "to_json(v.quote)::text || '}', ',' ORDER BY v.source_id, v.start, v.\"end\", v.id) "
        f"|| ']', '[]') FROM events_evidence v WHERE v.{column} = t.id)"
    )


def _actor_refs_json(links: str, where: str) -> str:
    """The actors of `links` (a table aliased l, with actor_id) that `where`
    keeps, as a JSON array of {"actor": id, "name": name}, in link order."""
    return (
        "(SELECT coalesce('[' || string_agg('{\"actor\":' || l.actor_id || ',\"name\":' || "
        "to_json(ra.name)::text || '}', ',' ORDER BY l.id) || ']', '[]') "
        f"FROM {links} l JOIN actors_actor ra ON ra.id = l.actor_id WHERE {where})"
    )


@dataclass(frozen=True)
class TableExport:
    """What the export of one resource reads: its rows (`source`, the table
    aliased `t`, with what it joins), its columns in order (name: SQL),
    those that are JSON text (embedded as JSON in JSON Lines), and those
    PostgreSQL writes as digits (no formula guard in CSV)."""

    noun: str
    table: str
    detail_view: str
    source: str
    columns: Mapping[str, str]
    json_columns: frozenset[str]
    unguarded: frozenset[str]

    def query(self, ids_sql: str | None, ids_params, fmt: str, origin: str) -> str:
        """The COPY statement of the export of the rows whose ids `ids_sql`
        selects (every row when None), in id order, as `fmt`."""
        where = id_conditions(ids_sql, ids_params)
        before, after = (
            sql.Literal(part).as_string(connection.connection)
            for part in _url_template(origin, self.detail_view)
        )
        expressions = {"id": "t.id", "url": f"{before} || t.id || {after}", **self.columns}
        if fmt == "csv":
            select = _csv_select(expressions, self.unguarded)
            query = f"SELECT {select} FROM {self.source} {where('t.id')}ORDER BY t.id"
        else:
            select = _jsonl_select(expressions, self.json_columns)
            query = (
                f"SELECT row_to_json(r)::text FROM (SELECT {select} FROM {self.source} "
                f"{where('t.id')}ORDER BY t.id) r"
            )
        return _copy(query, fmt)


_TIMES = {"created_at": iso_sql("t.created_at"), "updated_at": iso_sql("t.updated_at")}

STATEMENT_EXPORT = TableExport(
    noun="statements",
    table="events_statement",
    detail_view="statement-detail",
    source="events_statement t JOIN actors_actor sp ON sp.id = t.speaker_id",
    columns={
        "revision": "t.revision",
        "speaker_id": "t.speaker_id",
        "speaker_name": "sp.name",
        "kind": "t.kind",
        "content": "t.content",
        "quote": "t.quote",
        "stance": "t.stance",
        "date_start": "t.date_start",
        "date_end": "t.date_end",
        "date_precision": "t.date_precision",
        "targets": _actor_refs_json(
            "events_statementactor", "l.statement_id = t.id AND l.role = 'target'"
        ),
        "about_actors": _actor_refs_json(
            "events_statementactor", "l.statement_id = t.id AND l.role = 'about'"
        ),
        "about_events": "(SELECT coalesce(json_agg(l.event_id ORDER BY l.event_id)::text, '[]') "
        "FROM events_statementevent l WHERE l.statement_id = t.id)",
        "evidence": _evidence_json("statement_id"),
        "review_status": "t.review_status",
        **_TIMES,
    },
    json_columns=frozenset({"targets", "about_actors", "about_events", "evidence"}),
    unguarded=frozenset({"id", "revision", "speaker_id", "date_start", "date_end"}),
)

ACTOR_EXPORT = TableExport(
    noun="actors",
    table="actors_actor",
    detail_view="actor-detail",
    source="actors_actor t",
    columns={
        "revision": "t.revision",
        "slug": "t.slug",
        "name": "t.name",
        "kind": "t.kind",
        "country": "t.country",
        "sector": "t.sector",
        "description": "t.description",
        "aliases": "(SELECT coalesce(json_agg(l.name ORDER BY l.name)::text, '[]') "
        "FROM actors_actoralias l WHERE l.actor_id = t.id)",
        "identifiers": "(SELECT coalesce(json_agg(json_build_object('scheme', l.scheme, "
        "'value', l.value) ORDER BY l.scheme)::text, '[]') "
        "FROM actors_actoridentifier l WHERE l.actor_id = t.id)",
        **_TIMES,
    },
    json_columns=frozenset({"aliases", "identifiers"}),
    unguarded=frozenset({"id", "revision"}),
)

AFFILIATION_EXPORT = TableExport(
    noun="affiliations",
    table="actors_affiliation",
    detail_view="affiliation-detail",
    source="actors_affiliation t JOIN actors_actor m ON m.id = t.member_id "
    "JOIN actors_actor o ON o.id = t.organization_id",
    columns={
        "revision": "t.revision",
        "member_id": "t.member_id",
        "member_name": "m.name",
        "organization_id": "t.organization_id",
        "organization_name": "o.name",
        "role": "t.role",
        "start_date": "t.start_date",
        "start_precision": "t.start_precision",
        "end_date": "t.end_date",
        "end_precision": "t.end_precision",
        "evidence": _evidence_json("affiliation_id"),
        **_TIMES,
    },
    json_columns=frozenset({"evidence"}),
    unguarded=frozenset(
        {"id", "revision", "member_id", "organization_id", "start_date", "end_date"}
    ),
)


def slices(filtered: bool) -> list[tuple[int, int]] | None:
    """The id ranges a full export is cut into for `stream_in_parallel`, or
    None when it is better made in one statement: a filtered or small export."""
    if filtered:
        return None
    with connection.cursor() as cursor:
        # The planner's row estimate: counting a million rows would cost a slice.
        cursor.execute(
            "SELECT min(id), max(id), (SELECT reltuples::bigint FROM pg_class "
            "WHERE oid = 'events_event'::regclass) FROM events_event"
        )
        low, high, count = cursor.fetchone()
    if low is None or count < max(1, settings.EXPORT_PARALLEL_MIN_EVENTS):
        return None
    step = max(1, (high - low + 1) * settings.EXPORT_SLICE_EVENTS // count)
    return [(start, min(start + step - 1, high)) for start in range(low, high + 1, step)]


def stream(query: str, rows: Callable[[Buffer], Buffer] | None = None) -> Iterator[bytes]:
    """The chunks of the COPY's output, as PostgreSQL sends them (each row
    passed through `rows` when given), in a transaction of its own with a
    longer statement timeout than requests get."""
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = %s", [int(settings.EXPORT_TIMEOUT_MS)])
        if connection.queries_logged:  # counted like any query (COPY bypasses the log)
            connection.queries_log.append({"sql": query, "time": "0.000"})
        with cursor.cursor.copy(query) as copy:
            yield from _batched(copy, rows)


def _batched(
    chunks: Iterable[Buffer], rows: Callable[[Buffer], Buffer] | None = None, size: int = 1 << 16
) -> Iterator[bytes]:
    """PostgreSQL sends a COPY row by row: pass them on (through `rows`) in
    blocks of about `size` bytes, not one write to the client per row."""
    block = bytearray()
    for chunk in chunks:
        block += chunk if rows is None else rows(chunk)
        if len(block) >= size:
            yield bytes(block)
            block.clear()
    if block:
        yield bytes(block)


def stream_in_parallel(
    queries: list[str], rows: Callable[[Buffer], Buffer] | None = None
) -> Iterator[bytes]:
    """The output of `queries` (COPYs of consecutive slices of one export), in
    order, with two PostgreSQL backends at work: while this connection streams
    one slice, a second connection writes the next into memory (one slice at a
    time, so memory stays bounded). Both read the same snapshot, so the export
    is as consistent as a single statement. A full export is CPU-bound in
    PostgreSQL (building the participants' and evidence's JSON); this puts a
    second core to it."""
    timeout = int(settings.EXPORT_TIMEOUT_MS)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SET LOCAL statement_timeout = %s", [timeout])
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cursor.fetchone()
        helper = connection.get_new_connection(connection.get_connection_params())
        try:
            helper.autocommit = True  # the transaction below is begun explicitly
            helper.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            helper.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
            helper.execute(f"SET LOCAL statement_timeout = {timeout}")

            def buffered(query: str) -> list[bytes]:
                with helper.cursor() as helper_cursor, helper_cursor.copy(query) as copy:
                    return list(_batched(copy, rows))

            with ThreadPoolExecutor(max_workers=1) as pool:
                for index in range(0, len(queries), 2):
                    ahead = None
                    if index + 1 < len(queries):
                        ahead = pool.submit(buffered, queries[index + 1])
                    try:
                        if connection.queries_logged:
                            connection.queries_log.append({"sql": queries[index], "time": "0.000"})
                        with cursor.cursor.copy(queries[index]) as copy:
                            yield from _batched(copy, rows)
                        if ahead is not None:
                            yield from ahead.result()
                    except BaseException:
                        if ahead is not None and not ahead.done():
                            helper.cancel()  # the client left, or this side failed
                        raise
        finally:
            helper.close()


# Who may export what, how many at once, for how long -----------------------


def count_at_most(parts: list[tuple[str, list]], limit: int, table: str = "events_event") -> int:
    """How many rows the union of the id queries `parts` selects (every row
    of `table` when empty), counting no further than `limit`: each part is cut
    at `limit`, so a filter matching millions costs what `limit` rows do."""
    if not parts:
        parts = [(f"SELECT id FROM {table}", [])]
    union = " UNION ".join(f"(SELECT k.id FROM ({sql_}) k LIMIT %s)" for sql_, _ in parts)
    params = [p for sql_, part_params in parts for p in (*part_params, limit)]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({union}) u", params)
        return cursor.fetchone()[0]


# How long a slot outlives the longest an export may take (EXPORT_TIMEOUT_MS,
# and EXPORT_STALL_TIMEOUT_MS for its last write) before it expires by itself.
SLOT_GRACE_SECONDS = 60


class ExportSlots:
    """The exports running at once, counted in the cache (shared by every
    server process with CACHE_URL): at most `per_client` for one client and
    EXPORT_MAX_CONCURRENT in all (0: no limit). Each slot is a key of its own
    that expires by itself shortly after the longest an export may last, so
    a worker that dies in the middle of an export frees its slots then. When
    the cache is away, exports are let through, as throttles let requests."""

    def __init__(self, client: str, per_client: int):
        self.client, self.per_client = client, per_client
        self.token = uuid.uuid4().hex
        self.held: list[str] = []

    def claim(self) -> str | None:
        """Take a slot of the client's and one of all; None when both were
        free, otherwise why not (and nothing is held)."""
        try:
            if not self._take(f"client:{self.client}", self.per_client):
                return (
                    f"This client already has {self.per_client} export(s) running; "
                    "wait for it to finish."
                )
            if not self._take("all", settings.EXPORT_MAX_CONCURRENT):
                self.release()
                return (
                    f"{settings.EXPORT_MAX_CONCURRENT} exports are running, the most the "
                    "service makes at once; try again shortly."
                )
        except Exception:  # the shared cache is down: serve, and say so in the log
            logger.warning("Export slots unavailable; export not limited.", exc_info=True)
            self.release()  # what was taken before the failure (it swallows its own errors)
            self.held = []
        return None

    def _take(self, pool: str, size: int) -> bool:
        if size <= 0:
            return True
        lifetime = (
            settings.EXPORT_TIMEOUT_MS + settings.EXPORT_STALL_TIMEOUT_MS
        ) / 1000 + SLOT_GRACE_SECONDS
        for slot in range(size):
            key = f"export-slot:{pool}:{slot}"
            if cache.add(key, self.token, timeout=lifetime):
                self.held.append(key)
                return True
        return False

    def release(self) -> None:
        held, self.held = self.held, []
        for key in held:
            try:
                if cache.get(key) == self.token:  # not one that expired and was taken again
                    cache.delete(key)
            except Exception:
                logger.warning("Export slot %s not released; it will expire.", key, exc_info=True)


class ExportTimedOut(Exception):
    """The export ran past EXPORT_TIMEOUT_MS and was stopped."""


class BoundedExport:
    """An export's chunks as the response sends them, within its bounds: it
    stops once it has run EXPORT_TIMEOUT_MS in all (each statement has that
    timeout too, but a sliced export is several statements); under gunicorn,
    the client's socket gets a send timeout of EXPORT_STALL_TIMEOUT_MS, so a
    client that stops reading makes the write fail instead of holding the
    worker; and `on_close` runs when the response is closed, whether the
    export ended, failed, was dropped or never started.

    Closing the chunks' generator (GeneratorExit) ends the COPY: psycopg
    cancels the statement, and the transaction is rolled back."""

    def __init__(self, chunks: Iterator[bytes], *, client_socket=None, on_close=None):
        self.chunks, self.socket, self.on_close = chunks, client_socket, on_close
        self.iterator = self._bounded()
        self.closed = False
        self.socket_timeout = None

    def __iter__(self) -> Iterator[bytes]:
        return self.iterator

    def _bounded(self) -> Iterator[bytes]:
        deadline = time.monotonic() + settings.EXPORT_TIMEOUT_MS / 1000
        if self.socket is not None and settings.EXPORT_STALL_TIMEOUT_MS > 0:
            self.socket_timeout = (self.socket.gettimeout(),)
            self.socket.settimeout(settings.EXPORT_STALL_TIMEOUT_MS / 1000)
        for chunk in self.chunks:
            yield chunk
            if time.monotonic() > deadline:
                logger.warning("Export stopped after EXPORT_TIMEOUT_MS.")
                # An error, not the end: the client must not take a cut file for a whole one.
                raise ExportTimedOut(f"The export ran past {settings.EXPORT_TIMEOUT_MS} ms.")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.iterator.close()
            if hasattr(self.chunks, "close"):
                self.chunks.close()
        finally:
            if self.socket_timeout is not None:
                with contextlib.suppress(OSError):  # the connection may be gone
                    self.socket.settimeout(*self.socket_timeout)
            if self.on_close is not None:
                self.on_close()
