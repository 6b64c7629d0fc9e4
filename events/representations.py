"""Event representations built straight from rows, for the hot read paths.

Event lists and details are the answers the API gives most. Through model
instances, prefetches and serializer fields a page of 50 events costs several
milliseconds of Python; here one query returns the page's rows with their
participants and evidence aggregated by PostgreSQL, and plain functions shape
each row into exactly the dict `EventSerializer` makes (a test compares the
two on every event of the seed and of a synthetic dataset). orjson renders it.

The serializer stays the definition of the representation: it documents the
schema, renders history and writes, and is what this module must equal.
"""

import datetime
from collections.abc import Sequence

import orjson
from django.db import connection
from django.http import HttpResponse
from django.urls import reverse
from psycopg.types.json import set_json_loads
from rest_framework.renderers import JSONRenderer

from events.models import QUAD_CLASS, event_date_display

QUAD = {str(event_type): str(quad) for event_type, quad in QUAD_CLASS.items()}

COLUMNS = """
    e.id, e.revision, e.type, e.mode, e.context, e.vocabulary_version, e.status, e.title,
    e.summary, e.date_start, e.date_end, e.date_precision, e.place_id, p.name, p.kind,
    p.country, e.place_text, e.review_status, e.created_at, e.updated_at, e.date_sort,
    (SELECT json_agg(json_build_array(a.id, a.name, a.kind, ep.role) ORDER BY ep.id)
       FROM events_eventparticipant ep JOIN actors_actor a ON a.id = ep.actor_id
      WHERE ep.event_id = e.id),
    (SELECT json_agg(json_build_array(v.source_id, v.start, v."end", v.quote)
                     ORDER BY v.source_id, v.start, v."end", v.id)
       FROM events_evidence v WHERE v.event_id = e.id)
"""
# Where the ordering fields of the keyset pagination sit in a row.
ROW_KEYS = {"id": 0, "date_sort": 20}
FROM = "FROM events_event e LEFT JOIN events_place p ON p.id = e.place_id"


def fetch_rows(where: str, params: Sequence, order_by: str = "e.id") -> list[tuple]:
    """The rows of the events matching `where` (SQL over `e`), in one query."""
    with connection.cursor() as cursor:
        set_json_loads(orjson.loads, cursor.cursor)
        cursor.execute(f"SELECT {COLUMNS} {FROM} WHERE {where} ORDER BY {order_by}", params)
        return cursor.fetchall()


class EventShaper:
    """Turns rows of `fetch_rows` into the API's event dicts, with absolute
    URLs for `request`."""

    def __init__(self, request):
        origin = request.build_absolute_uri("/")[:-1]
        self.event_url = self._template(origin, "event-detail")
        self.actor_url = self._template(origin, "actor-detail")
        self.place_url = self._template(origin, "place-detail")
        self.statements_url = f"{origin}{reverse('statement-list')}?about_event="

    @staticmethod
    def _template(origin: str, view_name: str) -> tuple[str, str]:
        marker = 987654321
        path = reverse(view_name, kwargs={"pk": marker})
        before, after = path.split(str(marker))
        return origin + before, after

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
        actor_prefix, actor_suffix = self.actor_url
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
            "date_start": _date(date_start),
            "date_end": _date(date_end),
            "date_precision": date_precision,
            "date_display": event_date_display(date_start, date_end, date_precision, status),
            "place": place,
            "place_text": place_text,
            "participants": [
                {
                    "actor": {
                        "id": actor_id,
                        "url": f"{actor_prefix}{actor_id}{actor_suffix}",
                        "name": name,
                        "kind": kind,
                    },
                    "role": role,
                }
                for actor_id, name, kind, role in participants or ()
            ],
            "evidence": [
                {"source": source, "start": start, "end": end, "quote": quote}
                for source, start, end, quote in evidence or ()
            ],
            "review_status": review_status,
            "statements_url": f"{self.statements_url}{pk}",
            "created_at": _datetime(created_at),
            "updated_at": _datetime(updated_at),
        }


def _date(value: datetime.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _datetime(value: datetime.datetime) -> str:
    """As DRF's DateTimeField renders it: ISO 8601 in UTC, with Z."""
    text = value.astimezone(datetime.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def json_response(request, data, *, status: int = 200, headers: dict | None = None):
    """`data` rendered by orjson when the client negotiated JSON; None when it
    asked for another format (the browsable API), for the caller to fall back."""
    if not isinstance(getattr(request, "accepted_renderer", None), JSONRenderer):
        return None
    response = HttpResponse(orjson.dumps(data), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response
