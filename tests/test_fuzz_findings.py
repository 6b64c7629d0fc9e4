"""What `make fuzz` found, each pinned down: a write body the schema does not
allow is a 400 problem naming the value and stores nothing, never a 500 and
never a silent conversion; the schema documents what the API answers; a method
an endpoint does not take is a 405 whatever its query."""

import pytest
import yaml
from rest_framework import serializers

from actors.models import ActorIdentifier
from actors.urls import router as actor_router
from events.models import EventParticipant, StatementActor
from events.urls import router as event_router
from ledger.api.serializers import StrictStringMixin
from sources.models import Evidence
from sources.urls import router as source_router
from tests.factories import (
    ActorFactory,
    ActorIdentifierFactory,
    AffiliationFactory,
    EventFactory,
    EventParticipantFactory,
    PlaceFactory,
    SourceFactory,
    StatementFactory,
)
from tests.test_sdk import SCHEMA
from tests.test_strictness import body_errors, cursor, parameter_errors, problem

pytestmark = pytest.mark.django_db


def unchanged(record) -> None:
    """The refused write stored nothing: the record is still at revision 1."""
    revision = record.revision
    record.refresh_from_db()
    assert record.revision == revision == 1


# 1. An item of a list in a PATCH is complete -----------------------------------------

SPAN = {"start": 0, "end": 1, "quote": "A", "occurrence": 1}


@pytest.mark.parametrize(
    ("resource", "factory", "permission"),
    [
        ("events", EventFactory, "change_event"),
        ("statements", StatementFactory, "change_statement"),
        ("affiliations", AffiliationFactory, "change_affiliation"),
    ],
)
def test_a_patched_evidence_item_without_its_source_is_a_400_on_the_source(
    token_client, resource, factory, permission
):
    record = factory()
    spans = list(Evidence.objects.values_list("source", "start", "end"))
    response = token_client(permission).patch(
        f"/api/v1/{resource}/{record.pk}/", {"evidence": [SPAN]}, format="json"
    )
    assert body_errors(response) == {"/evidence/0/source": ["This field is required."]}
    unchanged(record)
    assert list(Evidence.objects.values_list("source", "start", "end")) == spans


@pytest.mark.parametrize(
    ("item", "pointer"),
    [
        ({"role": "initiator"}, "/participants/0/actor"),
        ({"actor": "ACTOR"}, "/participants/0/role"),
    ],
)
def test_a_patched_participant_without_actor_or_role_is_a_400_naming_it(
    token_client, item, pointer
):
    participant = EventParticipantFactory()
    event = participant.event
    item = {key: participant.actor.pk if value == "ACTOR" else value for key, value in item.items()}
    response = token_client("change_event").patch(
        f"/api/v1/events/{event.pk}/", {"participants": [item]}, format="json"
    )
    assert body_errors(response) == {pointer: ["This field is required."]}
    unchanged(event)
    assert list(EventParticipant.objects.values_list("actor", "role")) == [
        (participant.actor.pk, "initiator")
    ]


@pytest.mark.parametrize(
    ("item", "pointer"),
    [({"value": "0"}, "/identifiers/0/scheme"), ({"scheme": "0"}, "/identifiers/0/value")],
)
def test_a_patched_identifier_without_scheme_or_value_is_a_400_naming_it(
    token_client, item, pointer
):
    identifier = ActorIdentifierFactory(value="Q399")
    actor = identifier.actor
    response = token_client("change_actor").patch(
        f"/api/v1/actors/{actor.pk}/", {"identifiers": [item]}, format="json"
    )
    assert body_errors(response) == {pointer: ["This field is required."]}
    unchanged(actor)
    assert list(ActorIdentifier.objects.values_list("scheme", "value")) == [("wikidata", "Q399")]


def test_a_patch_still_keeps_the_fields_it_leaves_out(token_client):
    actor = ActorFactory(name="Armenia", description="Republic of Armenia.")
    response = token_client("change_actor").patch(
        f"/api/v1/actors/{actor.pk}/",
        {"identifiers": [{"scheme": "wikidata", "value": "Q399"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["identifiers"] == [{"scheme": "wikidata", "value": "Q399"}]
    actor.refresh_from_db()
    assert (actor.name, actor.description) == ("Armenia", "Republic of Armenia.")


# 2. Strings are strings, and lists are arrays -----------------------------------------


@pytest.mark.parametrize(
    ("resource", "factory", "permission", "body", "pointer"),
    [
        ("sources", SourceFactory, "change_source", {"text": 0}, "/text"),
        ("sources", SourceFactory, "change_source", {"publisher": 0}, "/publisher"),
        ("sources", SourceFactory, "change_source", {"title": 1.5}, "/title"),
        ("sources", SourceFactory, "change_source", {"language": 0}, "/language"),
        ("sources", SourceFactory, "change_source", {"document_url": 0}, "/document_url"),
        ("places", PlaceFactory, "change_place", {"name": 0}, "/name"),
        ("places", PlaceFactory, "change_place", {"slug": 0}, "/slug"),
        ("affiliations", AffiliationFactory, "change_affiliation", {"role": 0}, "/role"),
        ("actors", ActorFactory, "change_actor", {"aliases": [0]}, "/aliases/0"),
        ("actors", ActorFactory, "change_actor", {"description": True}, "/description"),
        ("events", EventFactory, "change_event", {"title": 0}, "/title"),
        ("statements", StatementFactory, "change_statement", {"content": 0}, "/content"),
    ],
)
def test_a_number_or_boolean_for_a_string_is_a_400(
    token_client, resource, factory, permission, body, pointer
):
    record = factory()
    response = token_client(permission).patch(
        f"/api/v1/{resource}/{record.pk}/", body, format="json"
    )
    assert body_errors(response) == {pointer: ["Not a valid string."]}
    unchanged(record)


def test_a_put_of_a_source_with_a_number_for_its_text_stores_nothing(token_client):
    source = SourceFactory(text="Armenia and Azerbaijan held talks.")
    response = token_client("change_source").put(
        f"/api/v1/sources/{source.pk}/", {"title": "Talks", "text": 0}, format="json"
    )
    assert body_errors(response) == {"/text": ["Not a valid string."]}
    unchanged(source)
    assert source.text == "Armenia and Azerbaijan held talks."


def test_a_quote_in_evidence_must_be_a_string(token_client):
    event = EventFactory()
    source = SourceFactory()
    response = token_client("change_event").patch(
        f"/api/v1/events/{event.pk}/",
        {"evidence": [{"source": source.pk, "quote": 0}]},
        format="json",
    )
    assert body_errors(response) == {"/evidence/0/quote": ["Not a valid string."]}
    unchanged(event)


def _string_fields(field, path: str):
    """Every string field a write serializer takes, by path, with list children
    and nested items."""
    if isinstance(field, serializers.ListSerializer):
        yield from _string_fields(field.child, f"{path}/0")
    elif isinstance(field, serializers.Serializer):
        for name, child in field.fields.items():
            if not child.read_only:
                yield from _string_fields(child, f"{path}/{name}")
    elif isinstance(field, serializers.ListField):
        yield from _string_fields(field.child, f"{path}/0")
    elif isinstance(field, serializers.CharField):
        yield path, field


def test_every_string_field_of_every_write_serializer_is_strict():
    strings = {}
    for _, viewset, basename in (
        event_router.registry + actor_router.registry + source_router.registry
    ):
        strings.update(_string_fields(viewset.write_serializer_class(), basename))
    assert {"source/text", "actor/aliases/0", "event/evidence/0/quote"} <= set(strings)
    lax = [path for path, field in strings.items() if not isinstance(field, StrictStringMixin)]
    assert lax == []


@pytest.mark.parametrize("name", ["about_events", "targets", "about_actors"])
@pytest.mark.parametrize("value", [{}, {"ID": 1}])
def test_an_object_for_a_list_of_ids_is_a_400_and_keeps_the_links(token_client, name, value):
    statement, actor, event = StatementFactory(), ActorFactory(), EventFactory()
    StatementActor.objects.create(statement=statement, actor=actor, role="target")
    StatementActor.objects.create(statement=statement, actor=actor, role="about")
    statement.about_events.add(event)
    linked = {"targets": actor.pk, "about_actors": actor.pk, "about_events": event.pk}[name]
    value = {str(linked): 1} if value else value
    response = token_client("change_statement").patch(
        f"/api/v1/statements/{statement.pk}/", {name: value}, format="json"
    )
    assert body_errors(response) == {f"/{name}": ['Expected a list of items but got type "dict".']}
    unchanged(statement)
    assert list(statement.about_events.all()) == [event]
    assert StatementActor.objects.filter(statement=statement).count() == 2


# 3. The schema documents a refused If-Match on every write -----------------------------


def test_the_schema_documents_a_400_for_every_write_of_a_record():
    schema = yaml.safe_load(SCHEMA.read_text())
    undocumented = [
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in ("put", "patch", "delete")
        if method in item and "400" not in item[method]["responses"]
    ]
    assert undocumented == []


def test_a_delete_with_an_if_match_the_api_refuses_is_a_400(token_client):
    place = PlaceFactory()
    client = token_client("delete_place", if_match="banana")
    response = client.delete(f"/api/v1/places/{place.pk}/")
    assert problem(response)["errors"][0]["header"] == "If-Match"
    unchanged(place)


# 4. 405 before the query parameters --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("PUT", "/api/v1/places/?kind=border", "GET, POST, HEAD, OPTIONS"),
        ("DELETE", "/api/v1/events/?actr=1", "GET, POST, HEAD, OPTIONS"),
        ("TRACE", "/api/v1/changes/?page_size=0", "GET, HEAD, OPTIONS"),
        ("TRACE", "/api/v1/events/export?format=csv&actr=1", "GET, HEAD, OPTIONS"),
    ],
)
def test_a_method_an_endpoint_does_not_take_is_a_405_whatever_its_query(
    token_client, method, url, allow
):
    client = token_client("change_place", "delete_event")
    response = client.generic(method, url)
    body = problem(response, 405)
    assert body["type"] == "urn:event-ledger:problem:method-not-allowed"
    assert response["Allow"] == allow


def test_credentials_are_checked_before_the_method(api):
    response = api.put("/api/v1/places/?kind=border", {}, format="json")
    assert problem(response, 401)["type"] == "urn:event-ledger:problem:not-authenticated"


# 5. Deeply nested cursors of a history and of the change feed ------------------------


@pytest.mark.parametrize(
    ("url", "parameter", "detail"),
    [
        (
            "/api/v1/events/{event}/history/",
            "cursor",
            "Invalid cursor; use the `next` link of a history page.",
        ),
        ("/api/v1/changes/", "after", "Invalid cursor; use the `cursor` of an earlier answer."),
    ],
)
@pytest.mark.parametrize(
    "token", ['{"r":' + "[" * 5000 + "]" * 5000 + "}", "[" * 5000 + "]" * 5000]
)
def test_a_deeply_nested_cursor_is_a_400_not_a_recursion_error(api, url, parameter, detail, token):
    event = EventFactory()
    errors = parameter_errors(api.get(url.format(event=event.pk), {parameter: cursor(token)}))
    assert errors == {parameter: [detail]}
