"""GET /api/v1/vocabulary/: the codebook, read from the models' own choices."""

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.postgres.fields import ArrayField

from actors.models import IDENTIFIER_SCHEMES, Actor, normalized_identifier
from events.models import (
    EVENT_VOCABULARY_VERSION,
    Event,
    EventParticipant,
    Place,
    QuadClass,
    Statement,
    StatementActor,
)
from tests.factories import ActorFactory, SourceFactory

URL = "/api/v1/vocabulary/"
ROOT = Path(__file__).resolve().parents[2]

# Each list of the body and the model field whose choices it serves.
FIELDS = {
    "event_types": (Event, "type"),
    "contexts": (Event, "context"),
    "statuses": (Event, "status"),
    "review_statuses": (Event, "review_status"),
    "participant_roles": (EventParticipant, "role"),
    "statement_kinds": (Statement, "kind"),
    "stances": (Statement, "stance"),
    "statement_actor_roles": (StatementActor, "role"),
    "actor_kinds": (Actor, "kind"),
    "sectors": (Actor, "sector"),
    "place_kinds": (Place, "kind"),
    "date_precisions": (Event, "date_precision"),
}


def choices_of(field) -> list[tuple[str, str]]:
    if isinstance(field, ArrayField):
        field = field.base_field
    return [(value, label) for value, label in field.choices or ()]


@pytest.fixture
def body(api):
    response = api.get(URL)
    assert response.status_code == 200
    return response.json()


def pairs(items: list[dict]) -> list[tuple[str, str]]:
    return [(item["value"], item["label"]) for item in items]


def test_each_list_is_exactly_its_model_fields_choices(body):
    assert set(body) == {
        "vocabulary",
        "version",
        "quad_classes",
        "mode",
        "identifier_schemes",
        *FIELDS,
    }
    for key, (model, name) in FIELDS.items():
        assert pairs(body[key]) == choices_of(model._meta.get_field(name)), key
    assert pairs(body["quad_classes"]) == QuadClass.choices
    assert [(s["value"], s["label"]) for s in body["identifier_schemes"]] == [
        (name, scheme.label) for name, scheme in IDENTIFIER_SCHEMES.items()
    ]
    assert (body["vocabulary"], body["version"]) == ("PLOVER", EVENT_VOCABULARY_VERSION)


def test_every_coded_field_of_the_domain_models_is_served(body):
    """A choice field added to a model, and not to the endpoint, fails here."""
    served = [pairs(body[key]) for key in FIELDS]
    for app in ("sources", "actors", "events"):
        for model in apps.get_app_config(app).get_models():
            for field in model._meta.get_fields():
                choices = choices_of(field) if hasattr(field, "choices") else []
                if choices:
                    assert choices in served, f"{model.__name__}.{field.name}"


def test_every_value_has_a_label_and_a_description(body):
    lists = [key for key, value in body.items() if isinstance(value, list)]
    assert len(lists) == len(FIELDS) + 2
    for key in lists:
        assert body[key], key
        for item in body[key]:
            assert all(isinstance(item[k], str) and item[k].strip() for k in ("value", "label"))
            assert isinstance(item["description"], str) and item["description"].strip(), item
    dissolve = next(t for t in body["event_types"] if t["value"] == "DISSOLVE")
    assert dissolve["description"].startswith("Extension of PLOVER")


def test_each_event_type_carries_the_quad_class_events_of_that_type_get(body):
    for item in body["event_types"]:
        assert item["quad_class"] == Event(type=item["value"]).quad_class
    assert {t["quad_class"] for t in body["event_types"]} == {*QuadClass.values, None}


def test_identifier_schemes_examples_match_their_patterns_and_are_accepted(body):
    for scheme in body["identifier_schemes"]:
        assert re.fullmatch(scheme["pattern"], scheme["example"])
        assert normalized_identifier(scheme["value"], scheme["example"]) == (
            scheme["value"],
            scheme["example"],
        )


def test_the_docs_table_of_event_types_is_the_served_one(body):
    text = (ROOT / "docs" / "vocabulary.md").read_text()
    rows = re.findall(r"^\| ([A-Z]+) \| ([^|]+) \| ([^|]+) \|$", text, flags=re.M)
    quad_label = dict(QuadClass.choices)
    served = [
        (
            t["value"],
            quad_label[t["quad_class"]].lower() if t["quad_class"] else "(none)",
            t["description"],
        )
        for t in body["event_types"]
    ]
    assert [(a, b.strip(), c.strip()) for a, b, c in rows] == served


class TestMode:
    """The mode is free: any slug for any type, as the body says."""

    def event(self, **changes) -> dict:
        source = SourceFactory(text=f"Russia attacked Ukraine. ({changes})")  # texts are unique
        body = {
            "type": "ASSAULT",
            "title": "Russia attacks Ukraine",
            "date_end": "2023-11-09",
            "date_precision": "day",
            "participants": [{"actor": ActorFactory(name="Russia").pk, "role": "initiator"}],
            "evidence": [{"source": source.pk, "quote": "Russia attacked Ukraine"}],
        }
        return {**body, **changes}

    def test_the_body_says_modes_are_free_slugs_of_the_fields_length(self, body):
        assert body["mode"]["controlled"] is False
        assert body["mode"]["max_length"] == Event._meta.get_field("mode").max_length == 50
        assert "free for every event type" in body["mode"]["description"]

    def test_any_slug_is_accepted_for_any_type(self, token_client):
        client = token_client("add_event")
        for event_type, mode in (("ASSAULT", "mediated-talks"), ("DISSOLVE", "invasion")):
            response = client.post(
                "/api/v1/events/", self.event(type=event_type, mode=mode), format="json"
            )
            assert response.status_code == 201, response.json()
            assert response.json()["mode"] == mode

    def test_a_mode_that_is_no_slug_or_too_long_is_refused(self, token_client):
        client = token_client("add_event")
        for mode in ("by air", "x" * 51):
            response = client.post("/api/v1/events/", self.event(mode=mode), format="json")
            assert response.status_code == 400
            assert [e["pointer"] for e in response.json()["errors"]] == ["/mode"]
        assert not Event.objects.exists()


class TestCaching:
    def test_the_answer_has_an_etag_and_may_be_cached_by_anyone(self, api):
        response = api.get(URL)
        assert re.fullmatch(r'"[0-9a-f]{32}"', response["ETag"])
        assert response["Cache-Control"] == "public, max-age=3600"
        assert api.get(URL)["ETag"] == response["ETag"]

    @pytest.mark.parametrize("form", ["{}", "W/{}", '"other", {}', "*"])
    def test_if_none_match_with_the_etag_answers_304_without_a_body(self, api, form):
        etag = api.get(URL)["ETag"]
        response = api.get(URL, HTTP_IF_NONE_MATCH=form.format(etag))
        assert response.status_code == 304
        assert response.content == b""
        assert response["ETag"] == etag
        assert response["Cache-Control"] == "public, max-age=3600"

    def test_another_etag_gets_the_body(self, api):
        response = api.get(URL, HTTP_IF_NONE_MATCH='"0123"')
        assert response.status_code == 200
        assert response.json()["version"] == EVENT_VOCABULARY_VERSION

    def test_the_codebook_is_served_without_a_query(self, api, db, django_assert_num_queries):
        with django_assert_num_queries(0):  # built from the code, once per process
            assert api.get(URL).status_code == 200


def test_anonymous_clients_may_read_it_and_are_throttled(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/min", "user": "5/min"},
    }
    assert api.get(URL).status_code == 200
    assert api.get(URL).status_code == 200
    assert api.get(URL).status_code == 429


def test_an_unknown_query_parameter_is_refused(api):
    response = api.get(URL, {"lang": "en"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "parameter": "lang",
            "detail": "Unknown parameter. Accepted here: format.",
            "code": "unknown_parameter",
        }
    ]


def test_writes_are_not_allowed(token_client):
    response = token_client("add_event").post(URL, {}, format="json")
    assert response.status_code == 405
