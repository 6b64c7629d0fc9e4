"""One write costs a bounded amount: lists in a body are capped, and each
record a body refers to is read once, however many items cite it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Event
from tests.factories import ActorFactory, SourceFactory

EVENTS = "/api/v1/events/"


@pytest.fixture
def writer(token_client):
    return token_client("add_event", "add_actor")


def event_body(source, spans, actor) -> dict:
    return {
        "type": "CONSULT",
        "title": "Talks",
        "date_precision": "unknown",
        "date_end": "2023-11-09",
        "participants": [{"actor": actor.pk, "role": "initiator"}],
        "evidence": [{"source": source.pk, "start": s, "end": s + 5} for s in spans],
    }


@pytest.mark.django_db
def test_a_list_over_the_cap_is_refused_before_any_item_is_read(writer, settings):
    settings.API_MAX_LIST_ITEMS = 10
    source, actor = SourceFactory(text="x" * 200), ActorFactory()
    with CaptureQueriesContext(connection) as queries:
        response = writer.post(EVENTS, event_body(source, range(11), actor), format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["pointer"] == "/evidence" and error["code"] == "too_many_items"
    assert "At most 10 items" in error["detail"]
    assert not any("events_source" in q["sql"] for q in queries.captured_queries)
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_aliases_over_the_cap_are_refused(token_client, settings):
    settings.API_MAX_LIST_ITEMS = 3
    writer = token_client("add_actor")
    response = writer.post(
        "/api/v1/actors/",
        {"slug": "a", "name": "A", "kind": "group", "aliases": ["1", "2", "3", "4"]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/aliases"


@pytest.mark.django_db(transaction=True)
def test_many_evidence_items_read_their_source_once(writer):
    source, actor = SourceFactory(text="y" * 2000), ActorFactory()
    with CaptureQueriesContext(connection) as queries:
        response = writer.post(EVENTS, event_body(source, range(0, 1000, 10), actor), "json")
    assert response.status_code == 201, response.json()
    assert len(response.json()["evidence"]) == 100
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "events_source"' in q["sql"]
    ]
    assert len(reads) == 1, reads


def test_an_unclosed_string_full_of_escaped_quotes_is_scanned_in_one_pass():
    """The depth check strips strings with a regex; a string that never closes
    must not make it retry from every escaped quote (quadratic: 20,000 escapes
    took seconds, a 1 MB body hours)."""
    from ledger.api.parsers import json_depth_exceeds

    body = "[" * 33 + '"' + '\\"' * 20000
    assert json_depth_exceeds(body, 32) is True
    assert json_depth_exceeds('[[["]]]]]]]]"]]]', 2) is True
    assert json_depth_exceeds('[["[[[[[[[[[["]]', 2) is False
