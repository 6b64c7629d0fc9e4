"""Event representations built straight from rows, for the hot read paths.

Event lists and details are the answers the API gives most. Through model
instances, prefetches and serializer fields a page of 50 events costs several
milliseconds of Python; here one query returns the page's rows with their
participants and evidence aggregated by PostgreSQL as JSON text and its times
as text, and a plain function shapes each row into exactly what
`EventSerializer` makes (a test compares the two on every event of the seed and
of a synthetic dataset). orjson renders it, taking the JSON text as it is.

The serializer stays the definition of the representation: it documents the
schema, renders history and writes, and is what this module must equal.
"""

import functools
from collections.abc import Sequence

import orjson
from django.db import connection
from django.http import HttpResponse
from django.urls import reverse
from rest_framework.renderers import JSONRenderer

from events.models import QUAD_CLASS, event_date_display

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
COLUMNS = f"""
    e.id, e.revision, e.type, e.mode, e.context, e.vocabulary_version, e.status, e.title,
    e.summary, e.date_start, e.date_end, e.date_precision, e.place_id, p.name, p.kind,
    p.country, e.place_text, e.review_status, {iso_sql("e.created_at")},
    {iso_sql("e.updated_at")}, e.date_sort,
    (SELECT '[' || string_agg(
                '{{"actor":{{"id":' || a.id || ',"url":' || to_json(%s::text || a.id || %s::text)
                || ',"name":' || to_json(a.name) || ',"kind":"' || a.kind || '"}},"role":"'
                || ep.role || '"}}', ',' ORDER BY ep.id) || ']'
       FROM events_eventparticipant ep JOIN actors_actor a ON a.id = ep.actor_id
      WHERE ep.event_id = e.id),
    (SELECT '[' || string_agg(
                '{{"source":' || v.source_id || ',"start":' || v.start || ',"end":' || v."end"
                || ',"quote":' || to_json(v.quote) || '}}', ','
                ORDER BY v.source_id, v.start, v."end", v.id) || ']'
       FROM events_evidence v WHERE v.event_id = e.id)
"""
# Where the ordering fields of the keyset pagination sit in a row.
ROW_KEYS = {"id": 0, "date_sort": 20}
FROM = "FROM events_event e LEFT JOIN events_place p ON p.id = e.place_id"
EMPTY = orjson.Fragment(b"[]")


def fetch_rows(
    request, where: str, params: Sequence, order_by: str = "e.id", limit: int | None = None
) -> list[tuple]:
    """The rows of the events matching `where` (SQL over `e`, with %s
    parameters), in one query, with URLs absolute for `request`."""
    statement = f"SELECT {COLUMNS} {FROM} WHERE {where} ORDER BY {order_by}"
    if limit is not None:
        statement += f" LIMIT {int(limit)}"
    with connection.cursor() as cursor:
        cursor.execute(statement, [*url_template(request, "actor-detail"), *params])
        return cursor.fetchall()


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

    def __call__(self, row: tuple) -> dict:
        (
            pk,
            revision,
            event_type,
            mode,
            context,
            vocabulary_version,
            status,
            title,
            summary,
            date_start,
            date_end,
            date_precision,
            place_id,
            place_name,
            place_kind,
            place_country,
            place_text,
            review_status,
            created_at,
            updated_at,
            _date_sort,
            participants,
            evidence,
        ) = row
        event_prefix, event_suffix = self.event_url
        place = None
        if place_id is not None:
            place_prefix, place_suffix = self.place_url
            place = {
                "id": place_id,
                "url": f"{place_prefix}{place_id}{place_suffix}",
                "name": place_name,
                "kind": place_kind,
                "country": place_country,
            }
        return {
            "id": pk,
            "url": f"{event_prefix}{pk}{event_suffix}",
            "revision": revision,
            "type": event_type,
            "quad_class": QUAD.get(event_type),
            "mode": mode,
            "context": context,
            "vocabulary_version": vocabulary_version,
            "status": status,
            "title": title,
            "summary": summary,
            "date_start": None if date_start is None else date_start.isoformat(),
            "date_end": None if date_end is None else date_end.isoformat(),
            "date_precision": date_precision,
            "date_display": event_date_display(date_start, date_end, date_precision, status),
            "place": place,
            "place_text": place_text,
            "participants": EMPTY if participants is None else orjson.Fragment(participants),
            "evidence": EMPTY if evidence is None else orjson.Fragment(evidence),
            "review_status": review_status,
            "statements_url": f"{self.statements_url}{pk}",
            "created_at": created_at,
            "updated_at": updated_at,
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
