"""Actors and places are referred to by id or by slug, in list filters and in
request bodies alike; responses keep giving ids. Digits are always an id, so
no slug is digits alone.

An unknown slug in a filter matches nothing, as an unknown id does (a filter
says which records to list); in a body it is a 400 naming the field, as an
unknown id is. A value that is neither an id nor a slug is a 400 in both."""

import os
import random

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from actors.models import Actor, Affiliation
from actors.services import actor_create
from events.models import Event, Place, Statement
from events.services import place_create
from tests.factories import (
    ActorFactory,
    AffiliationFactory,
    EventFactory,
    EventParticipantFactory,
    PlaceFactory,
    SourceFactory,
    StatementFactory,
)

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
EVENTS = "/api/v1/events/"
STATEMENTS = "/api/v1/statements/"
AFFILIATIONS = "/api/v1/affiliations/"


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def problem(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    return response.json()


# Filters ----------------------------------------------------------------------


def _events(role: str):
    """An event where a fresh actor plays `role`, another event, and the actor."""

    def make():
        wanted = EventParticipantFactory(role=role)
        EventParticipantFactory(role=role)
        return wanted.event_id, wanted.actor

    return make


def _event_at_a_place():
    place = PlaceFactory(slug="brussels")
    wanted = EventFactory(place=place)
    EventFactory(place=PlaceFactory())
    return wanted.pk, place


def _statement_by_speaker():
    wanted = StatementFactory()
    StatementFactory()
    return wanted.pk, wanted.speaker


def _statement_linked(role: str):
    def make():
        actor, other = ActorFactory(), ActorFactory()
        wanted, unwanted = StatementFactory(), StatementFactory()
        wanted.actor_links.create(actor=actor, role=role)
        unwanted.actor_links.create(actor=other, role=role)
        return wanted.pk, actor

    return make


def _affiliation(side: str):
    def make():
        wanted = AffiliationFactory()
        AffiliationFactory()
        return wanted.pk, getattr(wanted, side)

    return make


FILTERS = [
    (EVENTS, "actor", _events("participant")),
    (EVENTS, "initiator", _events("initiator")),
    (EVENTS, "target", _events("target")),
    (EVENTS, "place", _event_at_a_place),
    (STATEMENTS, "speaker", _statement_by_speaker),
    (STATEMENTS, "target", _statement_linked("target")),
    (STATEMENTS, "about_actor", _statement_linked("about")),
    (AFFILIATIONS, "member", _affiliation("member")),
    (AFFILIATIONS, "organization", _affiliation("organization")),
    (AFFILIATIONS, "actor", _affiliation("organization")),
]


@pytest.mark.parametrize(("url", "name", "make"), FILTERS, ids=[f"{u}?{n}" for u, n, _ in FILTERS])
def test_a_filter_by_slug_lists_what_the_filter_by_id_lists(api, url, name, make):
    wanted, record = make()
    assert ids(api.get(url, {name: record.slug})) == {wanted}
    assert ids(api.get(url, {name: str(record.pk)})) == {wanted}


def test_the_events_export_takes_slugs_too(api):
    wanted = EventParticipantFactory(role="initiator")
    unwanted = EventParticipantFactory(role="initiator")
    response = api.get(f"{EVENTS}export", {"format": "csv", "actor": wanted.actor.slug})
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    assert wanted.event.title in text and unwanted.event.title not in text


def test_ids_and_slugs_mix_in_a_repeated_filter(api):
    first, second, _ = (EventParticipantFactory() for _ in range(3))
    query = {"actor": [first.actor.slug, str(second.actor_id)]}
    assert ids(api.get(EVENTS, query)) == {first.event_id, second.event_id}


def test_an_unknown_slug_matches_nothing_as_an_unknown_id_does(api):
    participant = EventParticipantFactory()
    assert ids(api.get(EVENTS, {"actor": "no-such-actor"})) == set()
    assert ids(api.get(EVENTS, {"actor": "999999999"})) == set()
    assert ids(api.get(EVENTS, {"actor": "-1"})) == set()  # a slug's form, no actor's
    # Any of them: the unknown one adds nothing, and takes nothing away.
    query = {"actor": ["no-such-actor", participant.actor.slug]}
    assert ids(api.get(EVENTS, query)) == {participant.event_id}


def test_a_place_slug_is_no_actor_slug(api):
    PlaceFactory(slug="yerevan")
    EventParticipantFactory(actor=ActorFactory(slug="armenia"))
    assert ids(api.get(EVENTS, {"actor": "yerevan"})) == set()
    assert ids(api.get(EVENTS, {"place": "armenia"})) == set()


def test_slugs_are_resolved_in_one_query_and_ids_in_none(api):
    actors = [EventParticipantFactory().actor for _ in range(3)]

    def queries(values) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(EVENTS, {"actor": values}).status_code == 200
        return len(captured)

    by_ids = queries([str(a.pk) for a in actors])
    assert queries([a.slug for a in actors]) == by_ids + 1  # the slugs' ids, together
    assert queries([actors[0].slug, str(actors[1].pk)]) == by_ids + 1


def test_a_reference_filter_left_out_builds_no_query(api, monkeypatch):
    """A list without actor or place filters looks nothing up: no slug, and no
    merged record to follow (building even an empty query costs a request
    about a millisecond per filter)."""
    from ledger.api import filters

    looked_up = []
    real = filters.IdsOrSlugsField.to_python

    def to_python(self, value):
        manager = type(self.model._default_manager)
        original = manager.filter

        def filter_(*args, **kwargs):
            looked_up.append((self.model.__name__, kwargs))
            return original(*args, **kwargs)

        monkeypatch.setattr(manager, "filter", filter_)
        try:
            return real(self, value)
        finally:
            monkeypatch.setattr(manager, "filter", original)

    monkeypatch.setattr(filters.IdsOrSlugsField, "to_python", to_python)
    EventParticipantFactory()
    assert api.get(EVENTS).status_code == 200
    assert api.get(EVENTS, {"q": "talks"}).status_code == 200
    assert looked_up == []
    actor = Actor.objects.get()
    assert api.get(EVENTS, {"actor": actor.slug}).status_code == 200
    assert [model for model, _ in looked_up] == ["Actor", "Actor"]  # the slug, the merge


@pytest.mark.parametrize(
    "value",
    [
        "armenia!",
        "x" * 101,
        "1; DROP TABLE events_event",
        "' OR 1=1 --",
        "armenia%",
        "1.5",
        "9" * 25,
        "١٢",  # digits, but not ASCII ones
        "arménie",
    ],
)
@pytest.mark.parametrize(
    ("url", "name"), [(EVENTS, "actor"), (EVENTS, "place"), (AFFILIATIONS, "member")]
)
def test_a_value_neither_id_nor_slug_is_a_400_naming_the_parameter(api, url, name, value):
    body = problem(api.get(url, {name: value}))
    assert [e["parameter"] for e in body["errors"]] == [name]
    assert "is neither an id nor a slug" in body["errors"][0]["detail"]


def test_an_empty_value_is_a_400(api):
    body = problem(api.get(EVENTS, {"actor": ""}))
    assert [e["parameter"] for e in body["errors"]] == ["actor"]


def test_the_schema_says_the_filters_take_ids_or_slugs():
    import yaml
    from django.conf import settings as django_settings

    with open(django_settings.BASE_DIR / "openapi" / "v1.yaml") as f:
        schema = yaml.safe_load(f)
    for path, name in [
        ("/api/v1/events/", "actor"),
        ("/api/v1/events/", "place"),
        ("/api/v1/statements/", "speaker"),
        ("/api/v1/affiliations/", "organization"),
    ]:
        (parameter,) = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == name]
        assert parameter["schema"]["items"]["type"] == "string", (path, name)
        assert "id or slug" in parameter["description"], (path, name)
    statement = schema["components"]["schemas"]["StatementWriteRequest"]["properties"]
    assert statement["speaker"]["title"] == "ActorIdOrSlug"
    assert [s["type"] for s in statement["speaker"]["oneOf"]] == ["integer", "string"]
    assert [s["type"] for s in statement["targets"]["items"]["oneOf"]] == ["integer", "string"]
    assert statement["about_events"]["items"] == {"type": "integer"}  # events have no slug


# Property: a slug lists what its id lists ---------------------------------------


class _Undo(Exception):
    """Leaves the savepoint of one example, so the next starts empty."""


# Names as people type them: digits alone ("1991") among them, whose slug must
# not read as an id.
_names = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40),
    st.integers(0, 10**6).map(str),
    st.sampled_from(["Armenia", "Armenia", "армения", "Côte d'Ivoire", "---", "1991"]),
).filter(str.strip)


def test_an_actor_slug_lists_what_its_id_lists(api, capsys):
    """A fresh seed each run, printed: SLUG_SEED=<n> replays a failure."""
    run_seed = int(os.environ.get("SLUG_SEED") or random.randrange(2**32))
    with capsys.disabled():
        print(f"\nslug references: seed {run_seed} (replay: SLUG_SEED={run_seed})")

    @hypothesis_seed(run_seed)
    @settings(max_examples=40, deadline=None, database=None)
    @given(
        names=st.lists(_names, min_size=1, max_size=5),
        roles=st.lists(
            st.lists(
                st.tuples(
                    st.integers(0, 4), st.sampled_from(["initiator", "target", "participant"])
                ),
                max_size=3,
                unique_by=lambda t: t[0],
            ),
            max_size=4,
        ),
    )
    def same_answer(names, roles):
        try:
            with transaction.atomic():
                actors = [actor_create(name=name.strip()[:300], kind="country") for name in names]
                for participants in roles:
                    event = EventFactory()
                    for index, role in participants:
                        if index < len(actors):
                            event.participants.create(actor=actors[index], role=role)
                for actor in actors:
                    assert not actor.slug.isdigit(), actor.slug
                    by_slug = ids(api.get(EVENTS, {"actor": actor.slug, "page_size": 100}))
                    by_id = ids(api.get(EVENTS, {"actor": actor.pk, "page_size": 100}))
                    assert (
                        by_slug
                        == by_id
                        == set(Event.objects.involving([actor]).values_list("pk", flat=True))
                    )
                raise _Undo
        except _Undo:
            pass

    same_answer()


# Bodies -------------------------------------------------------------------------


def _event_body(**changes) -> dict:
    source = SourceFactory(text="Russia and Armenia held talks in Brussels.")
    body = {
        "type": "CONSULT",
        "title": "Russia and Armenia hold talks",
        "date_end": "2023-11-09",
        "date_precision": "unknown",
        "participants": [],
        "evidence": [{"source": source.pk, "quote": "Russia and Armenia held talks"}],
    }
    return {**body, **changes}


def test_an_event_takes_its_participants_and_place_by_slug(token_client):
    russia = ActorFactory(slug="russia", name="Russia")
    armenia = ActorFactory(slug="armenia", name="Armenia")
    brussels = PlaceFactory(slug="brussels", name="Brussels")
    body = _event_body(
        participants=[
            {"actor": "russia", "role": "initiator"},
            {"actor": armenia.pk, "role": "target"},
        ],
        place="brussels",
    )
    response = token_client("add_event").post(EVENTS, body, format="json")
    assert response.status_code == 201, response.json()
    answer = response.json()
    assert [(p["actor"]["id"], p["role"]) for p in answer["participants"]] == [
        (russia.pk, "initiator"),
        (armenia.pk, "target"),
    ]
    assert answer["place"]["id"] == brussels.pk
    event = Event.objects.get(pk=answer["id"])
    assert event.place == brussels
    assert set(event.participants.values_list("actor_id", "role")) == {
        (russia.pk, "initiator"),
        (armenia.pk, "target"),
    }


def test_a_patch_moves_an_event_to_a_place_given_by_slug(token_client):
    event = EventFactory(place=PlaceFactory())
    yerevan = PlaceFactory(slug="yerevan")
    response = token_client("change_event").patch(
        f"{EVENTS}{event.pk}/", {"place": "yerevan"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["place"]["id"] == yerevan.pk
    event.refresh_from_db()
    assert event.place == yerevan


def test_a_statement_takes_its_actors_by_slug_or_id(token_client):
    speaker = ActorFactory(slug="azerbaijan")
    target = ActorFactory(slug="armenia")
    about = ActorFactory(slug="russia")
    other = ActorFactory()
    event = EventFactory()
    source = SourceFactory(text="Azerbaijan accused Armenia.")
    body = {
        "speaker": "azerbaijan",
        "kind": "criticism",
        "content": "Accuses Armenia.",
        "date_end": "2023-11-09",
        "date_precision": "unknown",
        "targets": ["armenia", other.pk],
        "about_actors": ["russia"],
        "about_events": [event.pk],
        "evidence": [{"source": source.pk, "quote": "Azerbaijan accused Armenia"}],
    }
    response = token_client("add_statement").post(STATEMENTS, body, format="json")
    assert response.status_code == 201, response.json()
    answer = response.json()
    assert answer["speaker"]["id"] == speaker.pk
    assert {a["id"] for a in answer["targets"]} == {target.pk, other.pk}
    assert [a["id"] for a in answer["about_actors"]] == [about.pk]
    statement = Statement.objects.get(pk=answer["id"])
    assert set(statement.actor_links.values_list("actor_id", "role")) == {
        (target.pk, "target"),
        (other.pk, "target"),
        (about.pk, "about"),
    }


def test_an_affiliation_takes_its_member_and_organization_by_slug(token_client):
    member = ActorFactory(slug="nikol-pashinyan", kind="person")
    organization = ActorFactory(slug="armenia")
    source = SourceFactory(text="Armenian Prime Minister Nikol Pashinyan spoke.")
    body = {
        "member": "nikol-pashinyan",
        "organization": "armenia",
        "role": "Prime Minister",
        "evidence": [{"source": source.pk, "quote": "Armenian Prime Minister Nikol Pashinyan"}],
    }
    response = token_client("add_affiliation").post(AFFILIATIONS, body, format="json")
    assert response.status_code == 201, response.json()
    answer = response.json()
    assert (answer["member"]["id"], answer["organization"]["id"]) == (member.pk, organization.pk)
    affiliation = Affiliation.objects.get(pk=answer["id"])
    assert (affiliation.member, affiliation.organization) == (member, organization)


def test_the_same_actor_by_slug_and_by_id_is_one_actor(token_client):
    """The member and organisation must differ: a slug and an id of one actor do not."""
    actor = ActorFactory(slug="armenia")
    source = SourceFactory(text="Armenia is Armenia.")
    body = {
        "member": "armenia",
        "organization": actor.pk,
        "role": "Itself",
        "evidence": [{"source": source.pk, "quote": "Armenia is Armenia"}],
    }
    body_errors = problem(token_client("add_affiliation").post(AFFILIATIONS, body, format="json"))
    assert [e["pointer"] for e in body_errors["errors"]] == ["/organization"]


@pytest.mark.parametrize(
    ("value", "code", "detail"),
    [
        ("no-such-actor", "slug_does_not_exist", "No actor has the slug 'no-such-actor'."),
        ("yerevan", "slug_does_not_exist", "No actor has the slug 'yerevan'."),  # a place's
        ("armenia!", "incorrect_slug", "Expected an id or a slug, received 'armenia!'"),
        ("x" * 101, "incorrect_slug", "Expected an id or a slug"),
        ("1; DROP TABLE events_event", "incorrect_slug", "Expected an id or a slug"),
        ("' OR 1=1 --", "incorrect_slug", "Expected an id or a slug"),
        ("9" * 25, "incorrect_slug", "Expected an id or a slug"),
        ("999999999", "does_not_exist", 'Invalid pk "999999999" - object does not exist.'),
        (1.5, "incorrect_type", "Incorrect type."),
        (["armenia"], "incorrect_type", "Incorrect type."),
    ],
)
def test_a_bad_actor_reference_in_a_body_is_a_400_naming_the_field(
    token_client, value, code, detail
):
    PlaceFactory(slug="yerevan")
    ActorFactory(slug="armenia")
    body = _event_body(participants=[{"actor": value, "role": "initiator"}])
    errors = problem(token_client("add_event").post(EVENTS, body, format="json"))["errors"]
    assert [(e["pointer"], e["code"]) for e in errors] == [("/participants/0/actor", code)]
    assert errors[0]["detail"].startswith(detail), errors[0]["detail"]
    assert Event.objects.count() == 0


def test_bad_references_in_lists_and_places_each_name_their_item(token_client):
    ActorFactory(slug="armenia")
    speaker = ActorFactory()
    source = SourceFactory(text="Azerbaijan accused Armenia.")
    body = {
        "speaker": speaker.pk,
        "kind": "criticism",
        "content": "Accuses Armenia.",
        "date_end": "2023-11-09",
        "date_precision": "unknown",
        "targets": ["armenia", "armenai"],
        "about_events": ["talks"],  # events have no slugs
        "evidence": [{"source": "report", "quote": "Azerbaijan accused Armenia"}],
    }
    errors = problem(token_client("add_statement").post(STATEMENTS, body, format="json"))["errors"]
    assert {(e["pointer"], e["code"]) for e in errors} == {
        ("/targets", "slug_does_not_exist"),
        ("/about_events", "incorrect_type"),
        ("/evidence/0/source", "incorrect_type"),
    }
    assert source.pk and Statement.objects.count() == 0
    place = problem(
        token_client("add_event").post(EVENTS, _event_body(place="armenia"), format="json")
    )
    assert [(e["pointer"], e["detail"]) for e in place["errors"]] == [
        ("/place", "No place has the slug 'armenia'.")
    ]


# No slug reads as an id ---------------------------------------------------------


def test_a_slug_made_from_digits_gets_a_prefix():
    assert actor_create(name="1991", kind="country").slug == "actor-1991"
    assert actor_create(name="1991", kind="country").slug == "actor-1991-2"
    assert place_create(name="42", kind="city").slug == "place-42"


def test_a_slug_of_digits_alone_is_refused_by_the_api_and_the_database(token_client):
    response = token_client("add_actor").post(
        "/api/v1/actors/", {"slug": "1991", "name": "1991", "kind": "country"}, format="json"
    )
    errors = problem(response)["errors"]
    assert [e["pointer"] for e in errors] == ["/slug"]
    assert "digits alone would read as an id" in errors[0]["detail"]
    with pytest.raises(ValidationError):
        Actor(slug="1991", name="1991", kind="country").full_clean()
    for model, fields in [(Actor, {"kind": "country"}), (Place, {"kind": "city"})]:
        with pytest.raises(IntegrityError), transaction.atomic():
            model.objects.create(slug="1991", name="1991", **fields)
