"""The API is strict: a request it cannot answer exactly is a 400 problem that
says what is wrong, never a 500 and never a plausible wrong answer."""

import base64
import csv
import datetime
import io
import json

import pytest
import yaml
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from actors.models import Actor, ActorIdentifier
from events.models import Event, Statement
from ledger.api.parsers import MAX_JSON_DEPTH, _contains_nul, json_depth_exceeds
from ledger.context import MAX_REASON_LENGTH
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

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
VALIDATION = "urn:event-ledger:problem:validation-error"


def problem(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body


def parameter_errors(response) -> dict[str, list[str]]:
    """The 400's errors by query parameter."""
    body = problem(response)
    assert body["type"] == VALIDATION
    assert body["detail"] == "The query parameters did not validate; see errors."
    errors: dict[str, list[str]] = {}
    for error in body["errors"]:
        errors.setdefault(error["parameter"], []).append(error["detail"])
    return errors


def header_errors(response) -> dict[str, list[str]]:
    body = problem(response)
    assert body["type"] == VALIDATION
    assert body["detail"] == "The request headers did not validate; see errors."
    errors: dict[str, list[str]] = {}
    for error in body["errors"]:
        errors.setdefault(error["header"], []).append(error["detail"])
    return errors


def body_errors(response) -> dict[str, list[str]]:
    body = problem(response)
    assert body["detail"] == "The request body did not validate; see errors."
    errors: dict[str, list[str]] = {}
    for error in body["errors"]:
        errors.setdefault(error["pointer"], []).append(error["detail"])
    return errors


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# 1. Cursors ---------------------------------------------------------------------


def cursor(token: str | dict) -> str:
    """A cursor as KeysetPagination encodes one: urlsafe base64 of its JSON
    token, without padding. A str is sent as raw JSON text (1e400 has no
    json.dumps spelling)."""
    text = token if isinstance(token, str) else json.dumps(token, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_DATE_CURSORS = [
    {"o": "date", "v": ["2023-02-30", 1]},  # impossible day
    {"o": "date", "v": ["2023-13-01", 1]},  # impossible month
    {"o": "date", "v": ["banana", 1]},
    {"o": "-date", "v": ["2023-1-5", 1]},  # not how cursors write dates
    {"o": "date", "v": [20230101, 1]},
    {"o": "date", "v": [None, 1]},
    {"o": "date", "v": ["2023-01-01", "1"]},  # an id as a string
    {"o": "date", "v": ["2023-01-01", 1.5]},
    {"o": "date", "v": ["2023-01-01", True]},
    {"o": "date", "v": ["2023-01-01", [1]]},
    {"o": "date", "v": [["2023-01-01"], 1]},
    {"o": "date", "v": [{"d": "2023-01-01"}, 1]},
    {"o": "date", "v": ["2023-01-01"]},  # too short
    {"o": "date", "v": ["2023-01-01", 1, 2]},  # too long
    {"o": "date", "v": "2023-01-01"},
    {"o": "date", "v": {"0": "2023-01-01", "1": 1}},
    {"o": "date"},
    {"o": ["date"], "v": ["2023-01-01", 1]},
    '{"o":"date","v":["2023-01-01",1e400]}',  # float infinity
    '{"o":"date","v":["2023-01-01",NaN]}',
    '["date",["2023-01-01",1]]',
    '"date"',
    "null",
    "[" * 5000 + "]" * 5000,
]
BAD_ID_CURSORS = [
    '{"o":"id","v":[1e400]}',
    {"o": "id", "v": [10**30]},  # far past bigint
    {"o": "id", "v": [2**63]},
    {"o": "-id", "v": [-(2**63) - 1]},
    {"o": "id", "v": [True]},
    {"o": "id", "v": [[1]]},
    {"o": "id", "v": [{"id": 1}]},
    {"o": "id", "v": ["1"]},
    {"o": "id", "v": [1, 2]},
    {"o": "id", "v": []},
]
BAD_NAME_CURSORS = [
    {"o": "name", "v": ["Arm\u0000enia", 1]},  # NUL: PostgreSQL text cannot hold it
    {"o": "name", "v": [1, 1]},
    {"o": "name", "v": [None, 1]},
    {"o": "name", "v": [False, 1]},
    {"o": "name", "v": [["Armenia"], 1]},
    {"o": "-name", "v": [{"name": "Armenia"}, 1]},
    {"o": "name", "v": ["Armenia", 1e400]},
    '{"o":"name","v":["Armenia",1e400]}',
    {"o": "name", "v": ["Armenia"]},
]


def assert_cursor_refused(api, url: str, token) -> None:
    ordering = token.get("o", "date") if isinstance(token, dict) else None
    query = {"cursor": cursor(token)}
    if isinstance(ordering, str):
        query["ordering"] = ordering
    errors = parameter_errors(api.get(url, query))
    assert list(errors) == ["cursor"]
    assert errors["cursor"] == [
        "Invalid cursor; use the `next` link of a page with the same ordering."
    ]


@pytest.mark.parametrize("url", ["/api/v1/events/", "/api/v1/statements/"])
@pytest.mark.parametrize("token", BAD_DATE_CURSORS + BAD_ID_CURSORS)
def test_a_crafted_cursor_of_a_dated_list_is_a_400_on_cursor(api, url, token):
    assert_cursor_refused(api, url, token)


@pytest.mark.parametrize("url", ["/api/v1/actors/", "/api/v1/places/"])
@pytest.mark.parametrize("token", BAD_NAME_CURSORS + BAD_ID_CURSORS)
def test_a_crafted_cursor_of_a_named_list_is_a_400_on_cursor(api, url, token):
    assert_cursor_refused(api, url, token)


@pytest.mark.parametrize("url", ["/api/v1/sources/", "/api/v1/affiliations/"])
@pytest.mark.parametrize("token", BAD_ID_CURSORS)
def test_a_crafted_cursor_of_an_id_list_is_a_400_on_cursor(api, url, token):
    assert_cursor_refused(api, url, token)


def test_well_formed_cursors_still_page(api):
    events = [EventFactory(date_start=datetime.date(2023, 1, d), date_end=None) for d in (1, 2)]
    first = api.get("/api/v1/events/", {"ordering": "date", "page_size": 1}).json()
    assert [r["id"] for r in first["results"]] == [events[0].pk]
    assert ids(api.get(first["next"])) == {events[1].pk}
    crafted = cursor({"o": "date", "v": ["2023-01-01", events[0].pk]})
    assert ids(api.get("/api/v1/events/", {"ordering": "date", "cursor": crafted})) == {
        events[1].pk
    }
    actors = [ActorFactory(name=name) for name in ("Armenia", "Azerbaijan")]
    crafted = cursor({"o": "name", "v": ["Armenia", actors[0].pk]})
    assert ids(api.get("/api/v1/actors/", {"cursor": crafted})) == {actors[1].pk}


@pytest.mark.parametrize(
    "raw", ["1e400", "1.0", "true", "[1]", '{"id": 1}', '"1e3"', '"-1"', "0", str(2**63)]
)
def test_an_id_in_a_body_that_no_record_can_have_is_a_400(token_client, raw):
    source = SourceFactory()
    body = (
        '{"type": "CONSULT", "title": "x", "date_end": "2023-01-01", '
        f'"participants": [{{"actor": {raw}, "role": "target"}}], '
        f'"evidence": [{{"source": {source.pk}, "start": 0, "end": 5}}], "place": {raw}}}'
    )
    response = token_client("add_event").post(
        "/api/v1/events/", body, content_type="application/json"
    )
    assert set(body_errors(response)) == {"/participants/0/actor", "/place"}


# 2. Deeply nested JSON bodies ---------------------------------------------------


def deep_array(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep_object(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize("levels", [2_000, 100_000])
@pytest.mark.parametrize("nest", [deep_array, deep_object])
def test_a_deeply_nested_body_is_a_400_not_a_recursion_error(token_client, levels, nest):
    body = nest(levels)
    assert len(body) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = token_client("add_event").post(
        "/api/v1/events/", body, content_type="application/json"
    )
    refused = problem(response)
    assert refused["type"] == "urn:event-ledger:problem:parse-error"
    assert f"more than {MAX_JSON_DEPTH} levels" in refused["detail"]
    assert Event.objects.count() == 0


def test_an_unclosed_deep_body_is_refused_too(token_client):
    response = token_client("add_actor").post(
        "/api/v1/actors/", '{"aliases":' + "[" * 100_000, content_type="application/json"
    )
    assert f"more than {MAX_JSON_DEPTH} levels" in problem(response)["detail"]


def test_brackets_inside_strings_do_not_count_as_nesting(token_client):
    description = '[{"' * 200 + '\\"]' * 100
    response = token_client("add_actor").post(
        "/api/v1/actors/",
        json.dumps({"slug": "brackets", "name": "[", "kind": "group", "description": description}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert Actor.objects.get(slug="brackets").description == description


def test_the_depth_limit_counts_levels_exactly():
    assert not json_depth_exceeds(deep_array(MAX_JSON_DEPTH), MAX_JSON_DEPTH)
    assert json_depth_exceeds(deep_array(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH)
    wide = "[" + ",".join(["[[1]]"] * 10_000) + "]"
    assert not json_depth_exceeds(wide, MAX_JSON_DEPTH)
    assert not json_depth_exceeds('["' + "[" * 1000 + '"]', MAX_JSON_DEPTH)
    assert not json_depth_exceeds('["\\"' + "[" * 1000 + '"]', MAX_JSON_DEPTH)


def test_nul_detection_does_not_recurse():
    value: list = ["x"]
    for _ in range(100_000):
        value = [value]
    assert not _contains_nul(value)
    nested: dict = {"key\u0000": 1}
    for _ in range(100_000):
        nested = {"a": nested}
    assert _contains_nul(nested)


# 3. Repeated id and code filters mean "any of" ------------------------------------


@pytest.fixture
def three_events():
    """Three events, each with its own initiator, target, place and source."""
    events = []
    for country in ("ARM", "AZE", "GEO"):
        event = EventFactory(place=PlaceFactory(country=country))
        EventParticipantFactory(event=event, role="initiator")
        EventParticipantFactory(event=event, role="target")
        events.append(event)
    return events


def _initiator(event):
    return event.participants.get(role="initiator").actor_id


def _target(event):
    return event.participants.get(role="target").actor_id


def _source(record):
    return record.evidence.get().source_id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("actor", _initiator),
        ("initiator", _initiator),
        ("target", _target),
        ("place", lambda e: e.place_id),
        ("source", _source),
        ("country", lambda e: e.place.country),
    ],
)
def test_a_repeated_event_filter_means_any_of(api, three_events, name, value):
    first, second, _ = three_events
    query = f"{name}={value(first)}&{name}={value(second)}"
    assert ids(api.get(f"/api/v1/events/?{query}")) == {first.pk, second.pk}
    assert ids(api.get(f"/api/v1/events/?{name}={value(first)}")) == {first.pk}
    # The export applies the same filterset.
    exported = api.get(f"/api/v1/events/export?format=csv&{query}")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert {int(row["id"]) for row in rows} == {first.pk, second.pk}


def test_a_repeated_actor_with_a_role_is_any_of_them_in_that_role(api, three_events):
    first, second, _ = three_events
    query = f"actor={_initiator(first)}&actor={_target(second)}&role=initiator"
    assert ids(api.get(f"/api/v1/events/?{query}")) == {first.pk}
    query = f"actor={_initiator(first)}&actor={_target(second)}&role=initiator&role=target"
    assert ids(api.get(f"/api/v1/events/?{query}")) == {first.pk, second.pk}


def test_repeated_statement_filters_mean_any_of(api):
    statements = [StatementFactory() for _ in range(3)]
    events = [EventFactory() for _ in range(3)]
    for statement, event in zip(statements, events, strict=True):
        statement.actor_links.create(actor=ActorFactory(), role="target")
        statement.actor_links.create(actor=ActorFactory(), role="about")
        statement.about_events.add(event)
    first, second, _ = statements
    for name, value in [
        ("speaker", lambda s: s.speaker_id),
        ("target", lambda s: s.actor_links.get(role="target").actor_id),
        ("about_actor", lambda s: s.actor_links.get(role="about").actor_id),
        ("about_event", lambda s: s.about_events.get().pk),
        ("source", _source),
    ]:
        query = f"{name}={value(first)}&{name}={value(second)}"
        assert ids(api.get(f"/api/v1/statements/?{query}")) == {first.pk, second.pk}, name


def test_repeated_actor_place_and_affiliation_filters_mean_any_of(api):
    arm, aze, _ = (ActorFactory(country=c) for c in ("ARM", "AZE", "GEO"))
    assert ids(api.get("/api/v1/actors/?country=ARM&country=aze")) == {arm.pk, aze.pk}
    places = [PlaceFactory(country=c) for c in ("ARM", "AZE", "GEO")]
    assert ids(api.get("/api/v1/places/?country=ARM&country=AZE")) == {
        places[0].pk,
        places[1].pk,
    }
    first, second, _ = (AffiliationFactory() for _ in range(3))
    for name, value in [
        ("member", lambda a: a.member_id),
        ("organization", lambda a: a.organization_id),
        ("actor", lambda a: a.member_id),
    ]:
        query = f"{name}={value(first)}&{name}={value(second)}"
        assert ids(api.get(f"/api/v1/affiliations/?{query}")) == {first.pk, second.pk}, name


@pytest.mark.parametrize(
    ("url", "query", "name"),
    [
        ("/api/v1/events/", "actor=2&actor=x!", "actor"),
        ("/api/v1/events/", "place=1.5", "place"),
        ("/api/v1/events/", "source=99999999999999999999", "source"),
        ("/api/v1/events/", "country=ARM&country=Armenia", "country"),
        ("/api/v1/events/", "actor=2&actor=", "actor"),
        ("/api/v1/statements/", "about_event=1&about_event=-1", "about_event"),
        ("/api/v1/actors/", "country=AR", "country"),
        ("/api/v1/affiliations/", "member=me%40example.org", "member"),
        ("/api/v1/events/export", "format=csv&initiator=1&initiator=o.ne", "initiator"),
    ],
)
def test_an_invalid_value_of_a_repeated_filter_is_a_400_naming_it(api, url, query, name):
    assert list(parameter_errors(api.get(f"{url}?{query}"))) == [name]


def test_the_schema_declares_the_id_filters_repeatable():
    with open(settings.BASE_DIR / "openapi" / "v1.yaml") as f:
        schema = yaml.safe_load(f)
    expected = {
        "/api/v1/events/": [
            "actor",
            "initiator",
            "target",
            "place",
            "source",
            "country",
            "type",
            "review_status",
        ],
        "/api/v1/events/export": ["actor", "initiator", "target", "place", "source"],
        "/api/v1/statements/": ["speaker", "target", "about_actor", "about_event", "source"],
        "/api/v1/actors/": ["country", "kind", "sector"],
        "/api/v1/affiliations/": ["member", "organization", "actor"],
        "/api/v1/places/": ["country", "kind"],
    }
    for path, names in expected.items():
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        for name in names:
            parameter = parameters[name]
            assert parameter["schema"]["type"] == "array", (path, name)
            assert parameter["explode"] is True, (path, name)
    events = {p["name"]: p for p in schema["paths"]["/api/v1/events/"]["get"]["parameters"]}
    assert events["actor"]["schema"]["items"]["type"] == "string"  # an id or a slug
    assert events["source"]["schema"]["items"]["type"] == "integer"


# 4. Unknown query parameters --------------------------------------------------------


def test_an_unknown_list_parameter_is_a_400_naming_it_and_the_accepted_ones(api):
    EventFactory()
    errors = parameter_errors(api.get("/api/v1/events/?actr=3"))
    assert list(errors) == ["actr"]
    (detail,) = errors["actr"]
    assert detail.startswith("Unknown parameter. Did you mean actor? Accepted here: ")
    accepted = detail.split("Accepted here: ")[1].rstrip(".").split(", ")
    assert {"actor", "cursor", "page_size", "ordering", "q", "format", "date_after"} <= set(
        accepted
    )
    assert "as_of" not in accepted


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/events/{event}/?actor=3",
        "/api/v1/events/{event}/?page_size=3",
        "/api/v1/events/{event}/history/?as_of=2024-01-01T00:00:00Z",
        "/api/v1/events/{event}/history/1/?x=1",
        "/api/v1/events/export?format=csv&actr=3",
        "/api/v1/events/export?cursor=abc",
        "/api/v1/changes/?aftr=abc",
        "/api/v1/changes/?cursor=abc",
        "/api/v1/actors/?identifer=wikidata:Q1",
        "/api/v1/statements/?about=1",
        "/api/v1/sources/?published=2023-01-01",
        "/api/v1/places/?name=Brussels",
        "/api/v1/affiliations/?ordering=id&orderby=id",
    ],
)
def test_unknown_parameters_are_refused_everywhere(api, url):
    event = EventFactory()
    response = api.get(url.format(event=event.pk))
    (name,) = parameter_errors(response)
    assert name in url


def test_a_write_takes_no_query_parameters(token_client):
    response = token_client("add_actor").post(
        "/api/v1/actors/?dry_run=1", {"slug": "x", "name": "X", "kind": "group"}, format="json"
    )
    assert list(parameter_errors(response)) == ["dry_run"]
    assert not Actor.objects.filter(slug="x").exists()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/events/?cursor=&page_size=5&ordering=id&format=json&q=talks&date_after=2020-01-01",
        "/api/v1/events/{event}/?as_of=2100-01-01T00:00:00Z",
        "/api/v1/events/{event}/?format=json",
        "/api/v1/events/{event}/history/",
        "/api/v1/events/export?format=jsonl&actor=1&actor=2&date_before=2030-01-01",
        "/api/v1/changes/?after=WzAsMF0&resource=events&resource=actors&page_size=5",
        "/api/v1/actors/?identifier=wikidata:Q1&page_size=2&format=json",
    ],
)
def test_the_accepted_parameters_still_work(api, url):
    event = EventFactory()
    assert api.get(url.format(event=event.pk)).status_code == 200


@pytest.mark.parametrize(
    "query", ["page_size=5&page_size=6", "date_after=2020-01-01&date_after=2021-01-01", "q=a&q=b"]
)
def test_a_repeated_single_value_parameter_is_refused(api, query):
    name = query.split("=")[0]
    errors = parameter_errors(api.get(f"/api/v1/events/?{query}"))
    assert errors == {name: ["Given 2 times; this parameter takes one value."]}


# 5. Unknown and read-only body fields -----------------------------------------------


@pytest.fixture
def event_body():
    source, actor = SourceFactory(), ActorFactory()
    return {
        "type": "CONSULT",
        "title": "Talks",
        "date_start": "2024-03-15",
        "date_end": "2024-03-15",
        "participants": [{"actor": actor.pk, "role": "participant"}],
        "evidence": [{"source": source.pk, "start": 0, "end": 7}],
    }


def test_unknown_and_read_only_body_fields_are_refused_each_by_pointer(token_client, event_body):
    body = {
        **event_body,
        "titel": "Typo",
        "id": 5,
        "revision": 3,
        "url": "https://example.org/api/v1/events/5/",
        "created_at": "2024-01-01T00:00:00Z",
        "date_display": "15 Mar 2024",
    }
    body["participants"][0]["name"] = "Armenia"
    body["evidence"][0]["text"] = "Armenia"
    errors = body_errors(token_client("add_event").post("/api/v1/events/", body, format="json"))
    assert set(errors) == {
        "/titel",
        "/id",
        "/revision",
        "/url",
        "/created_at",
        "/date_display",
        "/participants/0/name",
        "/evidence/0/text",
    }
    assert errors["/titel"][0].startswith("Unknown field titel. The fields are: type, mode,")
    assert errors["/revision"] == [
        "revision is read-only: the server sets it. Leave it out of the body."
    ]
    assert Event.objects.count() == 0


def test_unknown_fields_are_reported_beside_other_errors(token_client, event_body):
    body = {**event_body, "type": "PARTY", "titel": "Typo"}
    errors = body_errors(token_client("add_event").post("/api/v1/events/", body, format="json"))
    assert set(errors) == {"/type", "/titel"}


@pytest.mark.parametrize(
    ("url", "permission", "body", "pointer"),
    [
        (
            "/api/v1/actors/",
            "add_actor",
            {"slug": "x", "name": "X", "kind": "group", "alias": []},
            "/alias",
        ),
        (
            "/api/v1/actors/",
            "add_actor",
            {
                "slug": "x",
                "name": "X",
                "kind": "group",
                "identifiers": [{"scheme": "wikidata", "value": "Q1", "url": "x"}],
            },
            "/identifiers/0/url",
        ),
        (
            "/api/v1/places/",
            "add_place",
            {"slug": "x", "name": "X", "kind": "city", "lat": 1},
            "/lat",
        ),
        ("/api/v1/sources/", "add_source", {"text": "Some text.", "sha256": "0" * 64}, "/sha256"),
        ("/api/v1/sources/", "add_source", {"text": "Some text.", "url": "https://x.org"}, "/url"),
    ],
)
def test_every_write_serializer_refuses_unexpected_fields(
    token_client, url, permission, body, pointer
):
    errors = body_errors(token_client(permission).post(url, body, format="json"))
    assert list(errors) == [pointer]


def test_a_patch_with_a_read_only_field_is_refused(token_client):
    actor = ActorFactory(name="Armenia")
    response = token_client("change_actor").patch(
        f"/api/v1/actors/{actor.pk}/", {"name": "Armenia!", "revision": 9}, format="json"
    )
    assert list(body_errors(response)) == ["/revision"]
    actor.refresh_from_db()
    assert actor.name == "Armenia"


# 6. If-Match must be an ETag ------------------------------------------------------


@pytest.mark.parametrize(
    ("if_match", "hint"),
    [
        ("1", 'like "3"'),
        ("banana", 'like "3"'),
        ('W/"1"', 'like "1"'),
        ('"banana"', 'like "3"'),
        ('"1", banana', 'like "3"'),
        ('"1",', 'like "3"'),
    ],
)
def test_a_malformed_if_match_is_a_400_asking_for_the_quoted_etag(token_client, if_match, hint):
    actor = ActorFactory(name="Armenia")
    client = token_client("change_actor", "delete_actor", if_match=None)
    url = f"/api/v1/actors/{actor.pk}/"
    for response in (
        client.patch(url, {"name": "x"}, format="json", HTTP_IF_MATCH=if_match),
        client.delete(url, HTTP_IF_MATCH=if_match),
    ):
        errors = header_errors(response)
        assert list(errors) == ["If-Match"]
        assert hint in errors["If-Match"][0]
    actor.refresh_from_db()
    assert actor.name == "Armenia"


def test_well_formed_if_match_headers_still_work(token_client):
    # (Every write of this test is in one transaction: the revision stays 1.)
    actor = ActorFactory()
    client = token_client("change_actor", if_match=None)
    url = f"/api/v1/actors/{actor.pk}/"
    assert client.patch(url, {"name": "a"}, format="json", HTTP_IF_MATCH='"1"').status_code == 200
    stale = client.patch(url, {"name": "b"}, format="json", HTTP_IF_MATCH='"2"')
    assert problem(stale, 412)["current_revision"] == 1
    both = client.patch(url, {"name": "c"}, format="json", HTTP_IF_MATCH='"5", "1"')
    assert both.status_code == 200
    assert client.patch(url, {"name": "d"}, format="json", HTTP_IF_MATCH=" * ").status_code == 200
    actor.refresh_from_db()
    assert actor.name == "d"


# 7. Impossible dates, and decade precision ---------------------------------------------


def test_an_impossible_body_date_is_called_impossible(token_client, event_body):
    body = {**event_body, "date_start": "2023-02-30", "date_end": "2023-13-01"}
    errors = body_errors(token_client("add_event").post("/api/v1/events/", body, format="json"))
    assert errors == {
        "/date_start": ["Not a valid date: February 2023 has no day 30 (it has 28 days)."],
        "/date_end": ["Not a valid date: there is no month 13."],
    }


def test_a_badly_written_body_date_is_a_format_error(token_client, event_body):
    body = {**event_body, "date_start": "15/03/2024", "date_end": "20240315"}
    errors = body_errors(token_client("add_event").post("/api/v1/events/", body, format="json"))
    assert errors == {
        "/date_start": ["Use the format YYYY-MM-DD, e.g. 2023-11-09."],
        "/date_end": ["Use the format YYYY-MM-DD, e.g. 2023-11-09."],
    }


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/api/v1/events/", "date_after"),
        ("/api/v1/statements/", "date_before"),
        ("/api/v1/sources/", "published_after"),
    ],
)
def test_an_impossible_filter_date_is_called_impossible(api, url, name):
    errors = parameter_errors(api.get(url, {name: "2023-02-30"}))
    assert errors == {name: ["Not a valid date: February 2023 has no day 30 (it has 28 days)."]}
    errors = parameter_errors(api.get(url, {name: "2024-02-30"}))
    assert errors == {name: ["Not a valid date: February 2024 has no day 30 (it has 29 days)."]}
    assert parameter_errors(api.get(url, {name: "03/15/2024"})) == {
        name: ["Use the format YYYY-MM-DD, e.g. 2023-11-09."]
    }


def test_affiliation_dates_are_checked_alike(token_client):
    member, organization, source = ActorFactory(kind="person"), ActorFactory(), SourceFactory()
    body = {
        "member": member.pk,
        "organization": organization.pk,
        "role": "Minister",
        "start_date": "2023-04-31",
        "evidence": [{"source": source.pk, "start": 0, "end": 7}],
    }
    response = token_client("add_affiliation").post("/api/v1/affiliations/", body, format="json")
    assert body_errors(response) == {
        "/start_date": ["Not a valid date: April 2023 has no day 31 (it has 30 days)."]
    }


@pytest.mark.parametrize(
    ("start", "end", "valid"),
    [
        (datetime.date(1990, 1, 1), datetime.date(1999, 12, 31), True),
        (None, datetime.date(1999, 12, 31), True),
        (datetime.date(1990, 1, 1), None, True),
        (datetime.date(1990, 1, 1), datetime.date(2009, 12, 31), True),  # two decades
        (datetime.date(1991, 1, 1), datetime.date(1999, 12, 31), False),
        (datetime.date(1990, 1, 2), datetime.date(1999, 12, 31), False),
        (datetime.date(1990, 1, 1), datetime.date(1998, 12, 31), False),
        (datetime.date(1990, 1, 1), datetime.date(1999, 12, 30), False),
        (datetime.date(1990, 1, 1), datetime.date(1990, 12, 31), False),
    ],
)
def test_decade_precision_bounds_are_whole_decades(start, end, valid):
    for factory in (EventFactory, StatementFactory):
        record = factory.build(date_start=start, date_end=end, date_precision="decade")
        if isinstance(record, Statement):
            record.speaker = ActorFactory()
        if valid:
            record.full_clean()
        else:
            with pytest.raises(ValidationError, match="whole decades"):
                record.full_clean()
            # The database refuses it too, whatever path writes.
            with pytest.raises(IntegrityError, match="decade_whole"), transaction.atomic():
                record.save()


def test_the_api_refuses_a_decade_that_is_not_whole(token_client, event_body):
    client = token_client("add_event")
    body = {**event_body, "date_precision": "decade", "date_start": "1991-01-01"}
    body["date_end"] = "1999-12-31"
    refused = problem(client.post("/api/v1/events/", body, format="json"))
    assert "whole decades" in refused["errors"][0]["detail"]
    body["date_start"] = "1990-01-01"
    created = client.post("/api/v1/events/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["date_display"] == "1990s"


# 8. Identifiers, per scheme ----------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "pointer", "message"),
    [
        ({"scheme": "wikidata", "value": "399"}, "/identifiers/0/value", "Wikidata item"),
        ({"scheme": "wikidata", "value": "Q0399"}, "/identifiers/0/value", "Q399"),
        ({"scheme": "iso3166", "value": "XYZ"}, "/identifiers/0/value", "not an assigned"),
        ({"scheme": "iso3166", "value": "AM"}, "/identifiers/0/value", "ARM"),
        ({"scheme": "cameo", "value": "ARMGO"}, "/identifiers/0/value", "CAMEO"),
        ({"scheme": "viaf", "value": "abc"}, "/identifiers/0/value", "VIAF"),
        ({"scheme": "isni", "value": "1234"}, "/identifiers/0/value", "ISNI"),
        ({"scheme": "freebase", "value": "/m/0jdx"}, "/identifiers/0/scheme", "Unknown identifier"),
    ],
)
def test_identifiers_are_validated_per_scheme(token_client, identifier, pointer, message):
    body = {"slug": "x", "name": "X", "kind": "country", "identifiers": [identifier]}
    errors = body_errors(token_client("add_actor").post("/api/v1/actors/", body, format="json"))
    assert list(errors) == [pointer]
    assert message in errors[pointer][0]
    assert not Actor.objects.filter(slug="x").exists()


def test_identifiers_are_stored_in_canonical_case(token_client):
    body = {
        "slug": "x",
        "name": "X",
        "kind": "country",
        "identifiers": [
            {"scheme": "wikidata", "value": "q399"},
            {"scheme": "iso3166", "value": "arm"},
            {"scheme": "cameo", "value": "armgov"},
        ],
    }
    response = token_client("add_actor").post("/api/v1/actors/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["identifiers"] == [
        {"scheme": "cameo", "value": "ARMGOV"},
        {"scheme": "iso3166", "value": "ARM"},
        {"scheme": "wikidata", "value": "Q399"},
    ]
    # A former state keeps its withdrawn ISO code.
    body = {
        "slug": "y",
        "name": "Y",
        "kind": "country",
        "identifiers": [{"scheme": "iso3166", "value": "SUN"}],
    }
    assert token_client("add_actor").post("/api/v1/actors/", body, format="json").status_code == 201


def test_the_model_refuses_an_identifier_of_the_wrong_form():
    for scheme, value in (("wikidata", "P31"), ("iso3166", "EUR"), ("unknown", "1")):
        with pytest.raises(ValidationError):
            ActorIdentifier(actor=ActorFactory(), scheme=scheme, value=value).full_clean()
    identifier = ActorIdentifier(actor=ActorFactory(), scheme="wikidata", value="q42")
    identifier.full_clean()
    assert identifier.value == "Q42"


@pytest.mark.parametrize(
    "query", ["wikidata:q399", "WIKIDATA:Q399", "Wikidata:q399", "wikidata:Q399"]
)
def test_identifier_lookup_is_case_insensitive(api, query):
    armenia = ActorIdentifierFactory(scheme="wikidata", value="Q399").actor
    assert ids(api.get("/api/v1/actors/", {"identifier": query})) == {armenia.pk}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("freebase:/m/0jdx", "Unknown identifier scheme 'freebase'"),
        ("wikidata:banana", "Not a valid Wikidata item: expected something like Q399."),
        ("iso3166:XYZ", "XYZ is not an assigned"),
        ("wikidata:", "Use scheme:value"),
    ],
)
def test_an_identifier_lookup_of_an_impossible_identifier_is_refused(api, query, message):
    errors = parameter_errors(api.get("/api/v1/actors/", {"identifier": query}))
    assert message in errors["identifier"][0]


# 9. Date ranges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "low", "high"),
    [
        ("/api/v1/events/", "date_after", "date_before"),
        ("/api/v1/statements/", "date_after", "date_before"),
        ("/api/v1/sources/", "published_after", "published_before"),
        ("/api/v1/events/export", "date_after", "date_before"),
    ],
)
def test_a_range_that_ends_before_it_starts_is_refused_naming_both(api, url, low, high):
    errors = parameter_errors(api.get(url, {low: "2024-01-02", high: "2024-01-01"}))
    message = f"{low} (2024-01-02) is after {high} (2024-01-01)."
    assert errors == {low: [message], high: [message]}
    assert api.get(url, {low: "2024-01-01", high: "2024-01-01"}).status_code == 200


# 10. X-Change-Reason length ------------------------------------------------------------


def test_a_reason_over_the_limit_is_a_400_naming_the_header(token_client):
    actor = ActorFactory(name="Armenia")
    client = token_client("change_actor")
    url = f"/api/v1/actors/{actor.pk}/"
    response = client.patch(
        url, {"name": "x"}, format="json", HTTP_X_CHANGE_REASON="r" * (MAX_REASON_LENGTH + 1)
    )
    errors = header_errors(response)
    assert errors == {
        "X-Change-Reason": [
            f"At most {MAX_REASON_LENGTH} characters; this one has {MAX_REASON_LENGTH + 1}."
        ]
    }
    actor.refresh_from_db()
    assert actor.name == "Armenia"
    reason = "r" * MAX_REASON_LENGTH
    assert (
        client.patch(url, {"name": "x"}, format="json", HTTP_X_CHANGE_REASON=reason).status_code
        == 200
    )
    history = client.get(f"{url}history/").json()["results"]
    assert history[0]["reason"] == reason


# 11. Header errors say header ----------------------------------------------------------


def test_an_idempotency_key_error_names_the_header(token_client):
    response = token_client("add_actor").post(
        "/api/v1/actors/",
        {"slug": "x", "name": "X", "kind": "group"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="has space",
    )
    body = problem(response)
    assert "query parameters" not in body["detail"]
    assert body["errors"] == [
        {
            "header": "Idempotency-Key",
            "detail": "Use 1 to 200 printable ASCII characters without spaces.",
            "code": "invalid",
        }
    ]
