"""Event representations built straight from rows, for the hot read paths.

Event lists and details are the answers the API gives most. Through model
instances, prefetches and serializer fields a page of 50 events costs several
milliseconds of Python; here one query returns the page's rows (the event's
read columns, `EVENT_COLUMNS`, read by name) with their participants and
evidence aggregated by PostgreSQL as JSON text and its times as text, and a
plain function shapes each row into exactly what `EventSerializer` makes (a
test compares the two on every event of the seed and of a synthetic dataset).
orjson renders it, taking the JSON text as it is.

The serializer stays the definition of the representation: it documents the
schema, renders history and writes, and is what this module must equal.
"""

import functools
from collections import namedtuple
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import orjson
from django.http import HttpResponse
from django.urls import reverse
from rest_framework.renderers import JSONRenderer

from events.models import QUAD_CLASS, event_date_display
from ledger.routing import reading as connection  # the database this request reads

QUAD = {str(event_type): str(quad) for event_type, quad in QUAD_CLASS.items()}


def iso_sql(column: str) -> str:
    """A time as the API writes it (DRF's DateTimeField): ISO 8601 in UTC with
    Z, microseconds only when there are any."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
        f"mod(date_part('microseconds', {utc})::int, 1000000) = 0 THEN '' "
        f"ELSE to_char({utc}, '.US') END || 'Z'"
    )


# Participants and evidence come as JSON text already in their final shape
# (the actor's URL from the two parameters around its id, the statement's
# first), and times as their final text: Python neither parses nor rebuilds
# them. The JSON is concatenated (strings escaped by to_json; kinds and roles
# are fixed words): PostgreSQL builds it faster than with json_build_object.
PARTICIPANTS_JSON = """(SELECT '[' || string_agg(
                '{"actor":{"id":' || a.id || ',"url":' || to_json(%s::text || a.id || %s::text)
                || ',"name":' || to_json(a.name) || ',"kind":"' || a.kind || '"},"role":"'
                || ep.role || '"}', ',' ORDER BY ep.id) || ']'
       FROM events_eventparticipant ep JOIN actors_actor a ON a.id = ep.actor_id
      WHERE ep.event_id = e.id)"""
EVIDENCE_JSON = """(SELECT '[' || string_agg(
                '{"source":' || v.source_id || ',"start":' || v.start || ',"end":' || v."end"
                || ',"quote":' || to_json(v.quote) || '}', ','
                ORDER BY v.source_id, v.start, v."end", v.id) || ']'
       FROM events_evidence v WHERE v.event_id = e.id)"""

# The event's read columns, declared once: each value a row of an event
# carries, by name, with its SQL over `e` (the event) and `p` (its place).
# `fetch_rows` selects them all and returns rows that are read by these names
# (`EventRow`); the export shows those it needs by the same names
# (events/export.py); tests/events/test_fast_paths.py checks them against
# EventSerializer. Only `participants` takes parameters (the two of
# `url_template(request, "actor-detail")`).
EVENT_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "id": "e.id",
        "revision": "e.revision",
        "type": "e.type",
        "mode": "e.mode",
        "context": "e.context",
        "vocabulary_version": "e.vocabulary_version",
        "status": "e.status",
        "title": "e.title",
        "summary": "e.summary",
        "date_start": "e.date_start",
        "date_end": "e.date_end",
        "date_precision": "e.date_precision",
        "date_sort": "e.date_sort",  # an ordering field of the keyset pagination
        "place_id": "e.place_id",
        "place_name": "p.name",
        "place_kind": "p.kind",
        "place_country": "p.country",
        "place_text": "e.place_text",
        "review_status": "e.review_status",
        "created_at": iso_sql("e.created_at"),
        "updated_at": iso_sql("e.updated_at"),
        "participants": PARTICIPANTS_JSON,
        "evidence": EVIDENCE_JSON,
    }
)
# A row of `fetch_rows`: a tuple whose values are read by column name, as the
# paginator reads model instances (getattr); `extra` holds the values of the
# extra columns a caller may ask for (a search's rank and snippet), in order.
EventRow = namedtuple("EventRow", [*EVENT_COLUMNS, "extra"], defaults=[()])
SELECT = ", ".join(f'{sql} AS "{name}"' for name, sql in EVENT_COLUMNS.items())
FROM = "FROM events_event e LEFT JOIN events_place p ON p.id = e.place_id"
EMPTY = orjson.Fragment(b"[]")


def fetch_rows(
    request,
    where: str,
    params: Sequence,
    order_by: str = "e.id",
    limit: int | None = None,
    *,
    extra: Sequence[tuple[str, Sequence]] = (),
    joins: str = "",
    prefix: tuple[str, Sequence] = ("", ()),
) -> list[EventRow]:
    """The rows of the events matching `where` (SQL over `e`, with %s
    parameters), in one query, with URLs absolute for `request`. `extra` are
    more columns (SQL over `e`, each with its parameters), read as the row's
    `extra` tuple; `joins` (without parameters) joins more tables to the
    events, and `prefix` (SQL with its parameters) goes before the statement
    (a WITH clause the rest may read)."""
    columns = ", ".join([SELECT, *(sql for sql, _ in extra)])
    extra_params = [param for _, params_ in extra for param in params_]
    width = len(EVENT_COLUMNS)
    statement = f"{prefix[0]}SELECT {columns} {FROM}{joins} WHERE {where} ORDER BY {order_by}"
    if limit is not None:
        statement += f" LIMIT {int(limit)}"
    # Prepared once per connection (ledger/postgresql/base.py): planning the
    # same statement on every request costs PostgreSQL as much as running it.
    with connection.prepared_cursor() as cursor:
        cursor.execute(
            statement,
            [*prefix[1], *url_template(request, "actor-detail"), *extra_params, *params],
        )
        if not extra:
            return [EventRow(*row) for row in cursor.fetchall()]
        return [EventRow(*row[:width], row[width:]) for row in cursor.fetchall()]


def url_template(request, view_name: str) -> tuple[str, str]:
    """The absolute URL of `view_name` for a record, as the text before and
    after its id."""
    return _url_template(request.build_absolute_uri("/")[:-1], view_name)


@functools.lru_cache(maxsize=64)
def _url_template(origin: str, view_name: str) -> tuple[str, str]:
    marker = 987654321
    before, after = reverse(view_name, kwargs={"pk": marker}).split(str(marker))
    return origin + before, after


class EventShaper:
    """Turns rows of `fetch_rows` into the API's event dicts, with absolute
    URLs for `request`. Participants and evidence are `orjson.Fragment`s:
    render with orjson (`json_response`), or make plain data with `plain()`."""

    def __init__(self, request):
        self.event_url = url_template(request, "event-detail")
        self.place_url = url_template(request, "place-detail")
        origin = request.build_absolute_uri("/")[:-1]
        self.statements_url = f"{origin}{reverse('statement-list')}?about_event="

    def __call__(self, row: EventRow) -> dict:
        pk, place_id, event_type = row.id, row.place_id, row.type
        date_start, date_end = row.date_start, row.date_end
        event_prefix, event_suffix = self.event_url
        place = None
        if place_id is not None:
            place_prefix, place_suffix = self.place_url
            place = {
                "id": place_id,
                "url": f"{place_prefix}{place_id}{place_suffix}",
                "name": row.place_name,
                "kind": row.place_kind,
                "country": row.place_country,
            }
        participants, evidence = row.participants, row.evidence
        return {
            "id": pk,
            "url": f"{event_prefix}{pk}{event_suffix}",
            "revision": row.revision,
            "type": event_type,
            "quad_class": QUAD.get(event_type),
            "mode": row.mode,
            "context": row.context,
            "vocabulary_version": row.vocabulary_version,
            "status": row.status,
            "title": row.title,
            "summary": row.summary,
            "date_start": None if date_start is None else date_start.isoformat(),
            "date_end": None if date_end is None else date_end.isoformat(),
            "date_precision": row.date_precision,
            "date_display": event_date_display(
                date_start, date_end, row.date_precision, row.status
            ),
            "place": place,
            "place_text": row.place_text,
            "participants": EMPTY if participants is None else orjson.Fragment(participants),
            "evidence": EMPTY if evidence is None else orjson.Fragment(evidence),
            "review_status": row.review_status,
            "statements_url": f"{self.statements_url}{pk}",
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }


def plain(data):
    """`data` with its fragments parsed: for renderers other than orjson."""
    return orjson.loads(orjson.dumps(data))


def json_response(request, data, *, status: int = 200, headers: dict | None = None):
    """`data` rendered by orjson when the client negotiated JSON; None when it
    asked for another format (the browsable API), for the caller to fall back
    (with `plain(data)`)."""
    if not isinstance(getattr(request, "accepted_renderer", None), JSONRenderer):
        return None
    response = HttpResponse(orjson.dumps(data), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response
