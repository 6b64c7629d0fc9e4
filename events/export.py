"""Streaming export of events as CSV or JSON Lines.

PostgreSQL writes the file: `COPY (SELECT ...) TO STDOUT` produces the rows
already formatted, and the server passes its chunks on as they come, so an
export of millions of rows runs at the database's pace in constant memory.
Each row is flat: the event's fields, its place, and its participants and
evidence as JSON arrays (one JSON object per line in JSON Lines; JSON text in
their CSV cells).
"""

from collections.abc import Iterator

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


# CSV cells are text: contexts joined by semicolons.
CSV_OVERRIDES = {"context": "array_to_string(e.context, ';')"}


def _quad_class_sql() -> str:
    cases = " ".join(f"WHEN '{t}' THEN '{q}'" for t, q in QUAD_CLASS.items())
    return f"CASE e.type {cases} END"


def export_query(ids_sql: str | None, ids_params, fmt: str, origin: str) -> str:
    """The COPY statement of an export of the events whose ids `ids_sql`
    selects (every event when None), with its parameters bound (COPY takes
    none of its own)."""
    connection.ensure_connection()
    raw = connection.connection
    # Without a filter, no semi-joins with a list of every id.
    participants_where = evidence_where = events_where = ""
    if ids_sql is not None:
        with ClientCursor(raw) as cursor:
            ids = cursor.mogrify(ids_sql, ids_params)
        participants_where = f"WHERE ep.event_id IN ({ids}) "
        evidence_where = f"WHERE v.event_id IN ({ids}) "
        events_where = f"WHERE e.id IN ({ids}) "
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
        select = ", ".join(f"{e} AS {n}" for n, e in expressions.items())
        options = "FORMAT csv, HEADER true"
    else:
        columns = ", ".join(f"{e} AS {n}" for n, e in expressions.items())
        select = f"row_to_json(r)::text FROM (SELECT {columns}"
        # CSV with a quote and delimiter JSON never holds unescaped: the text as it is.
        options = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"
    # Children are aggregated per event in id order and merged with the events,
    # rather than looked up row by row: twice as fast on a full export.
    query = (
        f"SELECT {select} FROM events_event e "
        "LEFT JOIN events_place p ON p.id = e.place_id "
        "LEFT JOIN (SELECT ep.event_id, json_agg(json_build_object('actor', ep.actor_id, "
        "'name', a.name, 'role', ep.role) ORDER BY ep.id) AS list "
        "FROM events_eventparticipant ep JOIN actors_actor a ON a.id = ep.actor_id "
        f"{participants_where}GROUP BY ep.event_id) pa ON pa.event_id = e.id "
        "LEFT JOIN (SELECT v.event_id, json_agg(json_build_object('source', v.source_id, "
        "'start', v.start, 'end', v.\"end\", 'quote', v.quote) "
        'ORDER BY v.source_id, v.start, v."end", v.id) AS list FROM events_evidence v '
        f"{evidence_where}GROUP BY v.event_id) ev ON ev.event_id = e.id "
        f"{events_where}ORDER BY e.id"
    )
    if fmt != "csv":
        query += ") r"
    return f"COPY ({query}) TO STDOUT ({options})"


def stream(query: str) -> Iterator[bytes]:
    """The chunks of the COPY's output, as PostgreSQL sends them, in a
    transaction of its own with a longer statement timeout than requests get."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = %s", [int(settings.EXPORT_TIMEOUT_MS)])
        if connection.queries_logged:  # counted like any query (COPY bypasses the log)
            connection.queries_log.append({"sql": query, "time": "0.000"})
        with cursor.cursor.copy(query) as copy:
            yield from copy
