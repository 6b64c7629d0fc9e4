"""The hot read paths of events (list, detail, export) against the definition
of the representation, EventSerializer, on the seed and on synthetic data; and
the event's read columns (EVENT_COLUMNS), which both paths read by name,
against the serializer's fields."""

import csv
import io
import json
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from events.export import COLUMN_NAMES as EXPORT_COLUMNS
from events.models import Event
from events.representations import EVENT_COLUMNS
from events.serializers import EventSerializer
from events.views import EventViewSet

pytestmark = pytest.mark.django_db
URL = "/api/v1/events/"
EXPORT = "/api/v1/events/export"


@pytest.fixture
def dataset(seeded):
    call_command(
        "generate_synthetic",
        "--events",
        "120",
        "--batch-size",
        "60",
        "--rebuild-indexes",
        "no",
        verbosity=0,
    )


def serialized(events) -> dict[int, dict]:
    request = RequestFactory().get(URL, HTTP_HOST="testserver")
    queryset = EventSerializer.eager(Event.objects.filter(pk__in=[e["id"] for e in events]))
    return {
        event.pk: json.loads(json.dumps(EventSerializer(event, context={"request": request}).data))
        for event in queryset
    }


def api_value(event: dict, column: str):
    """A read column's value in the API's representation of `event`: a field
    of the same name, or a field of its place (`place_<field>`)."""
    if column in event:
        return event[column]
    place_field = column.removeprefix("place_")
    assert place_field != column, f"{column} is not in the API's representation"
    return None if event["place"] is None else event["place"][place_field]


def test_the_read_columns_are_what_the_serializer_shows_and_the_list_orders_by():
    fields = EventSerializer().fields
    stored = {f.name for f in Event._meta.get_fields()}
    place_fields = fields["place"].fields
    shown = {
        *(name for name, field in fields.items() if name != "place" and field.source in stored),
        *(f"place_{name}" for name, field in place_fields.items() if field.source != "*"),
    }
    # (relevance orders by a rank the search computes: events/search.py)
    ordering_keys = {
        f.lstrip("-")
        for name, keys in EventViewSet.orderings.items()
        if name != "relevance"
        for f in keys
    }
    assert set(EVENT_COLUMNS) == shown | ordering_keys
    assert ordering_keys - shown == {"date_sort"}


def test_list_pages_equal_the_serializer(api, dataset):
    seen, url = [], URL + "?page_size=50&ordering=date"
    while url:
        page = api.get(url).json()
        expected = serialized(page["results"])
        for event in page["results"]:
            assert event == expected[event["id"]]
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == Event.objects.count() == 134


def test_details_equal_the_serializer(api, dataset):
    ongoing = Event.objects.filter(status="ongoing").first()
    for event in [*Event.objects.order_by("id")[:20], ongoing]:
        body = api.get(f"{URL}{event.pk}/").json()
        assert body == serialized([body])[event.pk]


def test_browsable_api_still_renders(api, seeded):
    response = api.get(URL, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Event List" in response.content


def test_detail_conditional_get(api, seeded):
    event = Event.objects.first()
    response = api.get(f"{URL}{event.pk}/")
    assert response["ETag"] == f'"{event.revision}"'
    assert api.get(f"{URL}{event.pk}/", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_missing_event_is_404(api, seeded):
    assert api.get(f"{URL}999999/").status_code == 404


def read_csv(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def read_jsonl(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_csv_export_has_every_event_in_id_order(api, dataset):
    response = api.get(EXPORT, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = read_csv(response)
    assert [int(r["id"]) for r in rows] == list(
        Event.objects.order_by("id").values_list("id", flat=True)
    )
    event = Event.objects.get(pk=rows[0]["id"])
    assert rows[0]["title"] == event.title
    assert rows[0]["context"] == ";".join(event.context)
    participants = json.loads(rows[0]["participants"])
    assert [(p["actor"], p["role"]) for p in participants] == list(
        event.participants.order_by("id").values_list("actor_id", "role")
    )


def test_jsonl_export_matches_the_api(api, dataset):
    response = api.get(EXPORT, {"format": "jsonl", "type": "ASSAULT"})
    assert response["Content-Type"] == "application/x-ndjson"
    rows = read_jsonl(response)
    assert len(rows) == Event.objects.filter(type="ASSAULT").count() > 0
    event = api.get(f"{URL}{rows[0]['id']}/").json()
    for field in ("url", "type", "quad_class", "title", "date_start", "created_at", "context"):
        assert rows[-1][field] == api.get(rows[-1]["url"]).json()[field]
        assert rows[0][field] == event[field]
    assert rows[0]["evidence"] == event["evidence"]
    assert [p["actor"] for p in rows[0]["participants"]] == [
        p["actor"]["id"] for p in event["participants"]
    ]


def test_every_exported_column_is_the_apis_value(api, dataset):
    listed = api.get(URL, {"page_size": 500, "ordering": "id"}).json()
    assert listed["next"] is None
    events = {event["id"]: event for event in listed["results"]}
    rows = read_jsonl(api.get(EXPORT, {"format": "jsonl"}))
    assert [row["id"] for row in rows] == list(events) and len(rows) == 134
    header = next(csv.reader(io.StringIO(b"".join(api.get(EXPORT).streaming_content).decode())))
    assert header == EXPORT_COLUMNS
    for row in rows:
        assert list(row) == EXPORT_COLUMNS
        event = events[row["id"]]
        for column in EXPORT_COLUMNS:
            if column == "participants":  # flat: the actor's id and name
                assert row[column] == [
                    {"actor": p["actor"]["id"], "name": p["actor"]["name"], "role": p["role"]}
                    for p in event["participants"]
                ]
            else:
                assert row[column] == api_value(event, column), column


def test_export_takes_the_list_filters(api, seeded):
    russia = api.get("/api/v1/actors/", {"q": "Russia"}).json()["results"][0]["id"]
    params = {"actor": russia, "date_after": "2000-01-01"}
    listed = [e["id"] for e in api.get(URL, {**params, "ordering": "id"}).json()["results"]]
    exported = [r["id"] for r in read_jsonl(api.get(EXPORT, {**params, "format": "jsonl"}))]
    assert exported == listed and listed


def test_export_refuses_bad_input(api, seeded):
    response = api.get(EXPORT, {"format": "xml"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameter"] == "format"
    assert api.get(EXPORT, {"actor": "x!"}).status_code == 400  # "x" is a slug


def test_export_is_one_copy(api, seeded):
    with CaptureQueriesContext(connection) as captured:
        assert len(read_csv(api.get(EXPORT))) == 14
    statements = [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]
    # Whether an anonymous client may export that many (a count, cut at the
    # limit), whether to cut it into slices (14 events: no), its statement
    # timeout, the COPY.
    assert len(statements) == 4
    assert statements[0].startswith("SELECT count(*)")
    assert statements[1].startswith("SELECT min(id), max(id)")
    assert statements[2].startswith("SET LOCAL statement_timeout")
    assert statements[3].startswith("COPY (SELECT")


def test_export_answers_options(api, seeded):
    response = api.options(EXPORT, {"format": "csv"})
    assert response.status_code == 200
    assert json.loads(response.content)["name"] == "Event Export"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_large_export_made_in_parallel_slices_equals_the_single_statement(
    api, seeded, settings, fmt
):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")  # the slicing reads the row estimate
    settings.EXPORT_PARALLEL_MIN_EVENTS = 10**9
    whole = b"".join(api.get(EXPORT, {"format": fmt}).streaming_content)
    settings.EXPORT_PARALLEL_MIN_EVENTS, settings.EXPORT_SLICE_EVENTS = 1, 3
    with CaptureQueriesContext(connection) as captured:
        sliced = b"".join(api.get(EXPORT, {"format": fmt}).streaming_content)
    copies = [q["sql"] for q in captured if q["sql"].startswith("COPY")]
    # 14 events in slices of 3: this connection copies every other slice, the
    # second connection the rest.
    assert len(copies) == 3
    assert sliced == whole
    assert len(whole.splitlines()) == 14 + (fmt == "csv")


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_hot_read_statements_are_prepared_once_per_connection(api, seeded, settings):
    """A detail's and a list's statement is prepared on the server the second
    time a connection runs it (DATABASE_PREPARE_THRESHOLD = 1), so that
    PostgreSQL plans it once per connection; the answers stay the same."""
    assert settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"] == 1
    event = Event.objects.order_by("id").first()
    first = [api.get(f"{URL}{event.pk}/").content, api.get(URL).content]
    assert not [s for s in prepared_statements() if s.startswith("SELECT e.id AS")]
    again = [api.get(f"{URL}{event.pk}/").content, api.get(URL).content]
    assert again == first
    prepared = [s for s in prepared_statements() if s.startswith("SELECT e.id AS")]
    assert len(prepared) == 2, prepared  # the detail's and the list's
    assert any(re.search(r"WHERE e\.id = \$\d+ ORDER BY", s) for s in prepared)  # the detail
    # A third request reuses them: nothing more is prepared; the query log
    # shows the statement with its values, as for any other cursor.
    last = Event.objects.order_by("id").last()
    with CaptureQueriesContext(connection) as captured:
        api.get(f"{URL}{last.pk}/")
    assert len([s for s in prepared_statements() if s.startswith("SELECT e.id AS")]) == 2
    (logged,) = [q["sql"] for q in captured if q["sql"].startswith("SELECT e.id AS")]
    assert f"WHERE e.id = {last.pk} ORDER BY" in logged and "$1" not in logged
