"""Streaming export of events as CSV or JSON Lines.

PostgreSQL writes the file: `COPY (SELECT ...) TO STDOUT` produces the rows
already formatted, and the server passes its chunks on as they come, so an
export of millions of rows runs at the database's pace in constant memory.
Each row is flat: the event's fields, its place, and its participants and
evidence as JSON arrays (one JSON object per line in JSON Lines; JSON text in
their CSV cells).
"""

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from psycopg import ClientCursor, sql

from events.models import QUAD_CLASS
from events.representations import iso_sql

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}

FIELDS = [
    ("id", "e.id"),
    ("url", "{event_url} || e.id || '/'"),
    ("revision", "e.revision"),
    ("type", "e.type"),
    ("quad_class", "{quad_class}"),
    ("mode", "e.mode"),
    ("context", "e.context"),
    ("status", "e.status"),
    ("title", "e.title"),
    ("summary", "e.summary"),
    ("date_start", "e.date_start"),
    ("date_end", "e.date_end"),
    ("date_precision", "e.date_precision"),
    ("place_id", "e.place_id"),
    ("place_name", "p.name"),
    ("place_country", "p.country"),
    ("place_text", "e.place_text"),
    ("participants", "coalesce(pa.list, '[]')"),
    ("evidence", "coalesce(ev.list, '[]')"),
    ("review_status", "e.review_status"),
    ("created_at", "{created_at}"),
    ("updated_at", "{updated_at}"),
]
COLUMN_NAMES = [name for name, _ in FIELDS]
# Fields built as JSON text, embedded as JSON (not as strings) in JSON Lines.
JSON_LISTS = {"participants", "evidence"}

# CSV cells are text: contexts joined by semicolons.
CSV_OVERRIDES = {"context": "array_to_string(e.context, ';')"}

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


def _expressions(fmt: str, origin: str) -> dict[str, str]:
    raw = connection.connection
    event_url = sql.Literal(origin + reverse("event-list")).as_string(raw)
    expressions = {
        name: expression.format(
            quad_class=_quad_class_sql(),
            event_url=event_url,
            created_at=iso_sql("e.created_at"),
            updated_at=iso_sql("e.updated_at"),
        )
        for name, expression in FIELDS
    }
    if fmt == "csv":
        expressions.update(CSV_OVERRIDES)
    return expressions


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

    expressions = _expressions(fmt, origin)
    if fmt == "csv":
        select = ", ".join(f"{e} AS {n}" for n, e in expressions.items())
        options = f"FORMAT csv, HEADER {'true' if header else 'false'}"
    else:
        columns = ", ".join(
            f"({e})::json AS {n}" if n in JSON_LISTS else f"{e} AS {n}"
            for n, e in expressions.items()
        )
        select = f"row_to_json(r)::text FROM (SELECT {columns}"
        # CSV with a quote and delimiter JSON never holds unescaped: the text as it is.
        options = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"
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
    return f"COPY ({query}) TO STDOUT ({options})"


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


def stream(query: str) -> Iterator[bytes]:
    """The chunks of the COPY's output, as PostgreSQL sends them, in a
    transaction of its own with a longer statement timeout than requests get."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = %s", [int(settings.EXPORT_TIMEOUT_MS)])
        if connection.queries_logged:  # counted like any query (COPY bypasses the log)
            connection.queries_log.append({"sql": query, "time": "0.000"})
        with cursor.cursor.copy(query) as copy:
            yield from _batched(copy)


def _batched(chunks: Iterable[bytes], size: int = 1 << 16) -> Iterator[bytes]:
    """PostgreSQL sends a COPY row by row: pass them on in blocks of about
    `size` bytes, not one write to the client per row."""
    block = bytearray()
    for chunk in chunks:
        block += chunk
        if len(block) >= size:
            yield bytes(block)
            block.clear()
    if block:
        yield bytes(block)


def stream_in_parallel(queries: list[str]) -> Iterator[bytes]:
    """The output of `queries` (COPYs of consecutive slices of one export), in
    order, with two PostgreSQL backends at work: while this connection streams
    one slice, a second connection writes the next into memory (one slice at a
    time, so memory stays bounded). Both read the same snapshot, so the export
    is as consistent as a single statement. A full export is CPU-bound in
    PostgreSQL (building the participants' and evidence's JSON); this puts a
    second core to it."""
    timeout = int(settings.EXPORT_TIMEOUT_MS)
    with transaction.atomic(), connection.cursor() as cursor:
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
                    return list(_batched(copy))

            with ThreadPoolExecutor(max_workers=1) as pool:
                for index in range(0, len(queries), 2):
                    ahead = None
                    if index + 1 < len(queries):
                        ahead = pool.submit(buffered, queries[index + 1])
                    try:
                        if connection.queries_logged:
                            connection.queries_log.append({"sql": queries[index], "time": "0.000"})
                        with cursor.cursor.copy(queries[index]) as copy:
                            yield from _batched(copy)
                        if ahead is not None:
                            yield from ahead.result()
                    except BaseException:
                        if ahead is not None and not ahead.done():
                            helper.cancel()  # the client left, or this side failed
                        raise
        finally:
            helper.close()
