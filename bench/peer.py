"""The benchmark's peer: the event list and detail of the API, byte for byte,
served by the least code that can serve them. A WSGI function over one psycopg
connection per worker, no Django: PostgreSQL builds each event's JSON in one
query, Python adds the `next` link and joins the rows.

bench/run.py starts it under gunicorn beside the service, checks that both
answer the same bytes for the same URLs, and reports the service's figures
as ratios to the peer's (bench/README.md). What the peer does is the floor a
request can cost on this machine; what the service spends beyond it is its
own.

It serves (everything else is a 404):

    GET /api/v1/events/?page_size=N[&cursor=C]   newest first, as the service's default
    GET /api/v1/events/<id>/                     with the service's ETag

Its environment: PEER_DATABASE (a libpq connection string) and PEER_QUAD (the
quad class of each event type, as JSON: the service's vocabulary, passed in by
bench/run.py rather than copied here).
"""

import base64
import binascii
import json
import os
import re
from urllib import parse

import psycopg

PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
DETAIL = re.compile(r"/api/v1/events/([1-9][0-9]{0,17})/")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quad_sql() -> str:
    quad = json.loads(os.environ.get("PEER_QUAD", "{}"))
    cases = " ".join(f"WHEN {_quote(t)} THEN '\"{q}\"'" for t, q in sorted(quad.items()))
    return f"CASE e.type {cases} ELSE 'null' END" if cases else "'null'"


def _date_sql(day: str, precision: str) -> str:
    """A date at a precision, as the service writes it: "2023", "Sep 2023",
    "1990s", "9 Nov 2023"."""
    return (
        f"CASE {precision} WHEN 'year' THEN to_char({day}, 'FMYYYY') "
        f"WHEN 'month' THEN to_char({day}, 'Mon FMYYYY') "
        f"WHEN 'decade' THEN (extract(year FROM {day})::int / 10 * 10)::text || 's' "
        f"ELSE to_char({day}, 'FMDD Mon FMYYYY') END"
    )


def _display_sql() -> str:
    start, end = "e.date_start", "e.date_end"
    first, last = _date_sql(start, "e.date_precision"), _date_sql(end, "e.date_precision")
    day = _date_sql(end, "'day'")
    as_of = f"'ongoing as of ' || {day}"
    interval = (
        f"CASE WHEN {start} IS NULL THEN CASE WHEN {end} IS NULL THEN 'date unknown' "
        f"ELSE 'before ' || {last} END "
        f"WHEN {end} IS NULL THEN CASE WHEN e.date_precision = 'unknown' THEN 'after ' "
        f"ELSE 'since ' END || {first} "
        f"WHEN e.date_precision = 'unknown' THEN 'between ' || {first} || ' and ' || {last} "
        f"WHEN {first} = {last} THEN {first} ELSE {first} || ' – ' || {last} END"
    )
    return (
        f"CASE WHEN e.status = 'ongoing' AND {end} IS NOT NULL THEN "
        f"CASE WHEN {start} IS NULL THEN {as_of} "
        f"ELSE 'since ' || {first} || ', ' || {as_of} END ELSE {interval} END"
    )


def _iso_sql(column: str) -> str:
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"mod(date_part('microseconds', {utc})::int, 1000000) = 0 THEN '' "
        f"ELSE to_char({utc}, '.US') END || 'Z'"
    )


def _json(value: str) -> str:
    return f"coalesce(to_json({value})::text, 'null')"


def _event_sql() -> str:
    """Each event's JSON (over `e` and its place `p`; %(origin)s is the
    request's scheme and host)."""
    url = "%(origin)s || '/api/v1/{}/' || {} || '/'"
    place = (
        "CASE WHEN p.id IS NULL THEN 'null' ELSE '{\"id\":' || p.id || ',\"url\":' || "
        f"to_json({url.format('places', 'p.id')}) || ',\"name\":' || to_json(p.name) || "
        "',\"kind\":' || to_json(p.kind) || ',\"country\":' || to_json(p.country) || '}' END"
    )
    participants = (
        "coalesce((SELECT '[' || string_agg('{\"actor\":{\"id\":' || a.id || ',\"url\":' || "
        f"to_json({url.format('actors', 'a.id')}) || ',\"name\":' || to_json(a.name) || "
        "',\"kind\":\"' || a.kind || '\"},\"role\":\"' || ep.role || '\"}', ',' ORDER BY ep.id) "
        "|| ']' FROM events_eventparticipant ep JOIN actors_actor a ON a.id = ep.actor_id "
        "WHERE ep.event_id = e.id), '[]')"
    )
    evidence = (
        "coalesce((SELECT '[' || string_agg('{\"source\":' || v.source_id || ',\"start\":' || "
        "v.start || ',\"end\":' || v.\"end\" || ',\"quote\":' || to_json(v.quote) || '}', ',' "
        "ORDER BY v.source_id, v.start, v.\"end\", v.id) || ']' FROM events_evidence v "
        "WHERE v.event_id = e.id), '[]')"
    )
    fields = [
        ("id", "e.id::text"),
        ("url", f"to_json({url.format('events', 'e.id')})"),
        ("revision", "e.revision::text"),
        ("type", "to_json(e.type)"),
        ("quad_class", _quad_sql()),
        ("mode", "to_json(e.mode)"),
        ("context", "to_json(e.context)"),
        ("vocabulary_version", "to_json(e.vocabulary_version)"),
        ("status", "to_json(e.status)"),
        ("title", "to_json(e.title)"),
        ("summary", "to_json(e.summary)"),
        ("date_start", _json("e.date_start::text")),
        ("date_end", _json("e.date_end::text")),
        ("date_precision", "to_json(e.date_precision)"),
        ("date_display", f"to_json({_display_sql()})"),
        ("place", place),
        ("place_text", "to_json(e.place_text)"),
        ("participants", participants),
        ("evidence", evidence),
        ("review_status", "to_json(e.review_status)"),
        ("statements_url", "to_json(%(origin)s || '/api/v1/statements/?about_event=' || e.id)"),
        ("created_at", f"to_json({_iso_sql('e.created_at')})"),
        ("updated_at", f"to_json({_iso_sql('e.updated_at')})"),
    ]
    return "'{' || " + " || ',' || ".join(f"'\"{k}\":' || {v}" for k, v in fields) + " || '}'"


EVENT = _event_sql()
FROM = "FROM events_event e LEFT JOIN events_place p ON p.id = e.place_id"
LIST = (
    f"SELECT {EVENT}, e.date_sort, e.id {FROM} %(after)s "
    "ORDER BY e.date_sort DESC, e.id DESC LIMIT %(limit)s"
)
AFTER = "WHERE (e.date_sort, e.id) < (%(date)s::date, %(id)s)"
ONE = f"SELECT {EVENT}, e.revision {FROM} WHERE e.id = %(id)s"

_connection: psycopg.Connection | None = None


def _database() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["PEER_DATABASE"], autocommit=True)
    return _connection


def _answer(start_response, status: str, body: bytes, headers=()) -> list[bytes]:
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def _cursor(raw: str) -> tuple[str, int] | None:
    try:
        token = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        date, pk = token["v"]
        if token["o"] != "-date" or type(pk) is not int:
            return None
        return str(date), pk
    except (ValueError, TypeError, KeyError, binascii.Error):
        return None


def _next_link(origin: str, path: str, query: str, date, pk: int) -> str:
    token = json.dumps({"o": "-date", "v": [date.isoformat(), pk]}, separators=(",", ":"))
    cursor = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    # As DRF's replace_query_param writes it: the parameters sorted.
    params = parse.parse_qs(query, keep_blank_values=True)
    params["cursor"] = [cursor]
    return f"{origin}{path}?{parse.urlencode(sorted(params.items()), doseq=True)}"


def application(environ, start_response):
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    origin = f"{environ.get('wsgi.url_scheme', 'http')}://{environ['HTTP_HOST']}"
    if environ.get("REQUEST_METHOD") != "GET":
        return _answer(start_response, "405 Method Not Allowed", b"{}")
    if path == "/readyz":
        return _answer(start_response, "200 OK", b"{}")
    match = DETAIL.fullmatch(path)
    if match:
        row = _database().execute(ONE, {"origin": origin, "id": int(match[1])}).fetchone()
        if row is None:
            return _answer(start_response, "404 Not Found", b"{}")
        return _answer(start_response, "200 OK", row[0].encode(), [("ETag", f'"{row[1]}"')])
    if path != "/api/v1/events/":
        return _answer(start_response, "404 Not Found", b"{}")
    params = parse.parse_qs(query)
    size = min(int(params.get("page_size", [PAGE_SIZE])[0]), MAX_PAGE_SIZE)
    values = {"origin": origin, "limit": size + 1}
    statement = LIST.replace("%(after)s", "")
    if "cursor" in params:
        position = _cursor(params["cursor"][0])
        if position is None:
            return _answer(start_response, "400 Bad Request", b"{}")
        statement = LIST.replace("%(after)s", AFTER)
        values.update(date=position[0], id=position[1])
    rows = _database().execute(statement, values).fetchall()
    link = "null"
    if len(rows) > size:
        rows = rows[:size]
        link = json.dumps(_next_link(origin, path, query, rows[-1][1], rows[-1][2]))
    body = f'{{"next":{link},"results":[{",".join(row[0] for row in rows)}]}}'
    return _answer(start_response, "200 OK", body.encode())
