"""POST /api/v1/documents/: a document with its annotation in one request,
checked in one pass, its actors and places found among those stored."""

import copy
import datetime
import json
import os
import random
import re
from pathlib import Path

import pytest
import yaml
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from actors.models import Actor
from events.documents import read_document
from events.models import Event, Statement
from ledger.models import Change
from sources.models import Evidence, Source

pytestmark = pytest.mark.django_db

DOCUMENTS = "/api/v1/documents/"
BORDER_TALKS = Path(__file__).resolve().parent / "documents" / "border_talks.txt"
CURATOR = (
    "add_source",
    "add_evidence",
    "add_actor",
    "change_actor",
    "add_affiliation",
    "add_place",
    "change_place",
    "add_event",
    "add_statement",
)


def border_talks() -> dict:
    published_on, text = read_document(BORDER_TALKS)
    annotation = yaml.safe_load(BORDER_TALKS.with_suffix(".yaml").read_text())
    # As a JSON client sends it: dates as text.
    annotation = json.loads(json.dumps(annotation, default=str))
    return {"text": text, "published_on": str(published_on), "annotation": annotation}


def post(client, body, **query):
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return client.post(DOCUMENTS + suffix, body, format="json")


def counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Source, Evidence, Actor, Event, Statement, Change)
    }


def test_a_document_is_stored_in_one_request(seeded, token_client):
    response = post(token_client(*CURATOR), border_talks())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["valid"] is True and body["dry_run"] is False and body["problems"] == []
    assert body["mentions"] is None  # a dry run's
    assert body["counts"] == {
        "actors": 0,
        "places": 1,
        "affiliations": 0,
        "events": 1,
        "statements": 2,
    }
    # All four actors are the seed's: found, not repeated.
    by = {match["key"]: match["by"] for match in body["matched"]}
    assert by == {
        "armenia": "identifier wikidata:Q399",
        "azerbaijan": "identifier wikidata:Q227",
        "european-union": "slug",
        "nikol-pashinyan": "slug",
    }
    source = Source.objects.get(pk=int(body["source"].rstrip("/").rsplit("/", 1)[1]))
    assert response["Location"] == body["source"]
    assert source.published_on == datetime.date(2024, 3, 15)
    talks = Event.objects.get(title__contains="Brussels")
    assert talks.evidence.count() == 3 and talks.participants.count() == 3
    # History says how it came, and the feed has one entry per record created.
    entry = talks.snapshots.get()
    assert entry.pgh_context.metadata["via"] == "import"
    assert Change.objects.filter(resource="events", object_id=talks.pk).count() == 1
    assert Change.objects.filter(resource="sources", object_id=source.pk).count() == 1


def test_a_dry_run_reports_and_stores_nothing(seeded, token_client):
    before = counts()
    response = post(token_client(*CURATOR), border_talks(), dry_run="true")
    assert response.status_code == 200
    body = response.json()
    assert body["dry_run"] is True and body["valid"] is True and body["source"] is None
    assert body["counts"]["events"] == 1 and body["counts"]["statements"] == 2
    assert counts() == before
    # What the text mentions, to annotate from: stored names, dates, quotes.
    text = border_talks()["text"]
    names = {(n["text"], n["matches"][0]["slug"]) for n in body["mentions"]["names"]}
    assert {("Armenia", "armenia"), ("Azerbaijan", "azerbaijan"), ("EU", "european-union")} <= names
    for span in body["mentions"]["names"] + body["mentions"]["quotes"]:
        assert text[span["start"] : span["end"]] == span["text"]
    assert [q["text"] for q in body["mentions"]["quotes"]] == ["constructive"]


def test_every_problem_is_reported_at_once_with_pointers_and_hints(seeded, token_client):
    document = border_talks()
    events = document["annotation"]["events"]
    events[0]["type"] = "NEGOTIATE"
    # Straight quotes and another case where the text has curly quotes.
    statements = document["annotation"]["statements"]
    statements[0]["evidence"] = [
        'armenian Prime Minister Nikol Pashinyan called the talks "constructive"'
    ]
    statements[1]["date"] = {"start": "2024-02-30", "end": None, "precision": "day"}
    document["annotation"]["places"][0]["kind"] = "village-ish"
    before = counts()
    response = post(token_client(*CURATOR), document)
    assert response.status_code == 400
    problem = response.json()
    assert problem["detail"].startswith("The document has 7 problem(s); nothing was stored.")
    errors = {error["pointer"]: error for error in problem["errors"]}
    assert {pointer: error["code"] for pointer, error in errors.items()} == {
        "/annotation/places/0/kind": "invalid_choice",
        "/annotation/events/0/place": "depends_on_problem",
        "/annotation/events/0/type": "invalid_choice",
        "/annotation/statements/0/about_events/0": "depends_on_problem",
        "/annotation/statements/0/evidence/0": "quote_not_found",
        "/annotation/statements/1/date/start": "invalid",
        "/annotation/statements/1/about_events/0": "depends_on_problem",
    }
    assert errors["/annotation/events/0/type"]["hint"].startswith("Accepted: AGREE, ")
    assert "city" in errors["/annotation/places/0/kind"]["hint"]
    text = document["text"]
    exact = "Armenian Prime Minister Nikol Pashinyan called the talks “constructive”"
    start = text.index(exact)
    assert errors["/annotation/statements/0/evidence/0"]["hint"] == (
        f"The text has “{exact}” at [{start}:{start + len(exact)}]; quote it exactly."
    )
    assert "February 2024 has no day 30" in errors["/annotation/statements/1/date/start"]["detail"]
    assert counts() == before


def test_a_problem_only_the_database_finds_is_reported_as_validation_reports_it(
    seeded, token_client
):
    """The first try leaves check constraints to the database (an affiliation
    of an actor with itself, refused by one): its refusal sends the document
    to the loading item by item, which checks each record first and reports
    the problem at its item."""
    document = border_talks()
    document["annotation"]["affiliations"][0]["member"] = "armenia"
    before = counts()
    with CaptureQueriesContext(connection) as captured:
        response = post(token_client(*CURATOR), document, dry_run="true")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert [(p["pointer"], p["detail"]) for p in body["problems"]] == [
        ("/annotation/affiliations/0", "Constraint “actors_affiliation_not_self” is violated.")
    ]
    # The first try (no savepoint per item) undone, then each item in its own.
    savepoints = [q["sql"] for q in captured if re.search(r"(^|; )SAVEPOINT ", q["sql"])]
    assert len(savepoints) > 3 + 8, len(savepoints)
    assert counts() == before


def test_a_problem_in_an_item_names_what_depends_on_it(seeded, token_client):
    document = border_talks()
    document["annotation"]["events"][0]["evidence"] = ["Nothing like this is in the text at all"]
    response = post(token_client(*CURATOR), document)
    pointers = {error["pointer"]: error["code"] for error in response.json()["errors"]}
    assert pointers["/annotation/events/0/evidence/0"] == "quote_not_found"
    assert pointers["/annotation/statements/0/about_events/0"] == "depends_on_problem"


def test_actors_are_found_by_identifier_name_or_alias_and_gain_what_is_new(seeded, token_client):
    document = border_talks()
    annotation = document["annotation"]
    actors = annotation["actors"]
    # Another key, the same Wikidata item: the stored Armenia, which gains an alias.
    actors[0] = {
        "key": "hayastan",
        "name": "Hayastan",
        "kind": "country",
        "identifiers": {"wikidata": "Q399"},
    }
    # A description where the stored actor has none is added.
    actors[1]["description"] = "Republic of Azerbaijan."
    # No identifier and another key: found by its name, case and diacritics aside.
    actors[3] = {"key": "pm", "name": "NIKOL PASHINYÁN", "kind": "person"}
    renamed = {"armenia": "hayastan", "nikol-pashinyan": "pm"}
    for item in annotation["affiliations"] + annotation["statements"]:
        for field in ("member", "organization", "speaker"):
            if field in item:
                item[field] = renamed.get(item[field], item[field])
    for participant in annotation["events"][0]["participants"]:
        participant["actor"] = renamed.get(participant["actor"], participant["actor"])
    response = post(token_client(*CURATOR), document)
    assert response.status_code == 201, response.json()
    body = response.json()
    by = {match["key"]: match["by"] for match in body["matched"]}
    assert by["hayastan"] == "identifier wikidata:Q399" and by["pm"] == "name"
    armenia, azerbaijan = Actor.objects.get(slug="armenia"), Actor.objects.get(slug="azerbaijan")
    added = {(a["id"], a["field"]): a["added"] for a in body["additions"]}
    assert added == {
        (armenia.pk, "aliases"): ["Hayastan"],
        (azerbaijan.pk, "description"): "Republic of Azerbaijan.",
    }
    assert "Hayastan" in armenia.aliases.values_list("name", flat=True)
    assert azerbaijan.description == "Republic of Azerbaijan."
    assert Actor.objects.count() == 13  # nothing repeated
    alias = armenia.aliases.get(name="Hayastan")
    assert alias.snapshots.get().pgh_context.metadata["via"] == "import"


def test_a_different_value_for_what_an_actor_holds_is_a_conflict(seeded, token_client):
    document = border_talks()
    document["annotation"]["actors"][3]["description"] = "Someone else entirely."
    response = post(token_client(*CURATOR), document, dry_run="true")
    [conflict] = [p for p in response.json()["problems"] if p["code"] == "conflict"]
    assert conflict["pointer"] == "/annotation/actors/3/description"
    assert "`nikol-pashinyan`" in conflict["detail"]


def test_identifiers_of_two_actors_are_a_conflict_naming_both(seeded, token_client):
    document = border_talks()
    document["annotation"]["actors"][0]["identifiers"] = {"wikidata": "Q399", "iso3166": "AZE"}
    response = post(token_client(*CURATOR), document)
    assert response.status_code == 400
    [conflict] = [e for e in response.json()["errors"] if e["code"] == "conflict"]
    assert conflict["pointer"] == "/annotation/actors/0/identifiers"
    assert "`armenia`" in conflict["detail"] and "`azerbaijan`" in conflict["detail"]


def test_a_stored_actor_may_be_referred_to_without_declaring_it(seeded, token_client):
    document = border_talks()
    for event in document["annotation"]["events"]:
        for participant in event["participants"]:
            if participant["actor"] == "european-union":
                participant["actor"] = "wikidata:Q458"
    document["annotation"]["actors"] = [
        a for a in document["annotation"]["actors"] if a["key"] != "european-union"
    ]
    response = post(token_client(*CURATOR), document)
    assert response.status_code == 201, response.json()
    talks = Event.objects.get(title__contains="Brussels")
    assert talks.participants.filter(actor__slug="european-union", role="mediator").exists()


def test_a_near_match_is_suggested_and_not_taken(seeded, token_client):
    document = border_talks()
    document["annotation"]["actors"].append(
        {"key": "armenia-2", "name": "Armenija", "kind": "country"}
    )
    response = post(token_client(*CURATOR), document, dry_run="true")
    assert response.status_code == 200
    suggestions = response.json()["suggestions"]
    assert any("looks like existing `armenia`" in s["detail"] for s in suggestions)
    assert response.json()["counts"]["actors"] == 1


def test_an_actor_the_document_creates_is_found_by_its_identifier_later_in_it(seeded, token_client):
    document = border_talks()
    annotation = document["annotation"]
    newland = {"key": "newland", "name": "Newland", "kind": "country"}
    annotation["actors"] += [
        {**newland, "identifiers": {"wikidata": "Q999999"}},
        # The same item again, under another key and name: the actor just made.
        {
            "key": "new-land",
            "name": "New Land",
            "kind": "country",
            "identifiers": {"wikidata": "Q999999"},
        },
    ]
    annotation["events"][0]["participants"].append(
        {"actor": "wikidata:Q999999", "role": "mediator"}
    )
    response = post(token_client(*CURATOR), document)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["counts"]["actors"] == 1
    created = Actor.objects.get(slug="newland")
    assert {
        "pointer": "/annotation/actors/5",
        "key": "new-land",
        "id": created.pk,
        "by": "identifier wikidata:Q999999",
    } in body["matched"]
    assert list(created.aliases.values_list("name", flat=True)) == ["New Land"]
    talks = Event.objects.get(title__contains="Brussels")
    assert talks.participants.filter(actor=created, role="mediator").exists()


def fifty_items() -> dict:
    """border_talks with 50 items more: 20 new actors (an alias and an
    identifier each) and 30 events, each between one of them and a stored
    actor named by slug, id or identifier."""
    document = border_talks()
    annotation = document["annotation"]
    stored = list(Actor.objects.order_by("pk")[:10])
    for number in range(20):
        annotation["actors"].append(
            {
                "key": f"delegate-{number}",
                "name": f"Delegate Number {number}",
                "kind": "person",
                "aliases": [f"Delegate {number}"],
                "identifiers": {"wikidata": f"Q{990000 + number}"},
            }
        )
    for number in range(30):
        other = stored[number % len(stored)]
        identifier = other.identifiers.first()  # scheme:value
        reference = [other.slug, other.pk, str(identifier or other.slug)][number % 3]
        annotation["events"].append(
            {
                "type": "CONSULT",
                "title": f"Meeting {number}",
                "date": {"start": "2024-03-15", "end": "2024-03-15", "precision": "day"},
                "participants": [
                    {"actor": f"delegate-{number % 20}", "role": "participant"},
                    {"actor": reference, "role": "participant"},
                ],
                "evidence": ["Armenia and Azerbaijan held border talks in Brussels on Friday"],
            }
        )
    return document


def test_a_dry_run_of_fifty_items_costs_a_few_queries_per_item(seeded, token_client):
    """The stored actors an annotation names are read for all of its items at
    once, and a document without problems is loaded without a savepoint per
    item, its records' constraints left to the database and their child rows
    written together: its queries are about one per record."""
    client = token_client(*CURATOR)
    document = fifty_items()
    with CaptureQueriesContext(connection) as captured:
        response = post(client, document, dry_run="true")
    assert response.status_code == 200 and response.json()["valid"], response.json()
    assert response.json()["counts"] == {
        "actors": 20,
        "places": 1,
        "affiliations": 0,  # the seed's, which gains this document's evidence
        "events": 31,
        "statements": 2,
    }
    statements = [query["sql"] for query in captured.captured_queries]
    # 90 when written: the request's own (authentication, permissions,
    # mentions, the source and its annotation, the savepoints), 9 reading the
    # stored actors the annotation names, one INSERT per record (54) and one
    # per kind of child row for all records together (aliases, identifiers,
    # participants, evidence). Checking each record before writing it (its
    # check constraints, its slug's and identifiers' uniqueness, 3 to 4
    # queries), as the loading item by item does, and inserting its child
    # rows one record at a time made it 291; resolving each actor with
    # queries of its own (6 to 8 for each declaration, one for each
    # reference to a stored actor) would add over 150.
    assert len(statements) <= 100, len(statements)
    # The request's savepoint, the document's and its first try's (all items
    # at once); none per item.
    savepoints = [sql for sql in statements if re.search(r"(^|; )SAVEPOINT ", sql)]
    assert len(savepoints) == 3, savepoints


def test_a_yaml_body_with_a_year_written_as_a_number(seeded, token_client):
    document = border_talks()
    document["annotation"]["statements"][1]["date"] = {
        "start": 2024,
        "end": 2024,
        "precision": "year",
    }
    response = token_client(*CURATOR).post(
        DOCUMENTS, yaml.safe_dump(document, allow_unicode=True), content_type="application/yaml"
    )
    assert response.status_code == 201, response.json()
    promise = Statement.objects.get(kind="promise")
    assert (promise.date_start, promise.date_end) == (
        datetime.date(2024, 1, 1),
        datetime.date(2024, 12, 31),
    )


def test_yaml_aliases_are_refused(seeded, token_client):
    body = "text: &t Some text.\nannotation: {format: event-ledger-annotation/1, title: *t}\n"
    response = token_client(*CURATOR).post(DOCUMENTS, body, content_type="application/yaml")
    assert response.status_code == 400
    assert "aliases" in response.json()["detail"]


def test_the_same_text_again_is_a_problem_at_text(seeded, token_client):
    client = token_client(*CURATOR)
    assert post(client, border_talks()).status_code == 201
    response = post(client, border_talks())
    assert response.status_code == 400
    [error] = [e for e in response.json()["errors"] if e["pointer"] == "/text"]
    assert error["detail"].startswith("This text is already stored as source ")


def test_a_retry_with_the_same_idempotency_key_is_answered_once(seeded, token_client):
    client = token_client(*CURATOR)
    first = client.post(DOCUMENTS, border_talks(), format="json", HTTP_IDEMPOTENCY_KEY="doc-1")
    again = client.post(DOCUMENTS, border_talks(), format="json", HTTP_IDEMPOTENCY_KEY="doc-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Source.objects.filter(text=border_talks()["text"]).count() == 1


def test_only_curators_store_documents(seeded, api, token_client):
    assert post(api, border_talks()).status_code == 401
    assert post(token_client("view_event", "add_event"), border_talks()).status_code == 403
    assert post(token_client(*CURATOR), border_talks(), dry_run="maybe").status_code == 400


def test_an_annotation_without_its_format_line_is_refused(seeded, token_client):
    document = border_talks()
    del document["annotation"]["format"]
    response = post(token_client(*CURATOR), copy.deepcopy(document))
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/annotation"


# Anything a client may send: never a 500, never a half-written document.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["armenia", "wikidata:Q399", "geonames:1", "2023-11-09", "1991", "day"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def _mangled_annotations(draw):
    """The border talks annotation with a few values replaced by anything."""
    document = border_talks()
    annotation = document["annotation"]
    for _ in range(draw(st.integers(1, 4))):
        section = draw(
            st.sampled_from(["actors", "places", "affiliations", "events", "statements"])
        )
        items = annotation[section]
        if not items:
            continue
        item = items[draw(st.integers(0, len(items) - 1))]
        field = draw(st.sampled_from([*sorted(item), "identifiers", "aliases", "date", "key"]))
        item[field] = draw(_values)
    return document


class _Undo(Exception):
    """Leaves the savepoint of one example, so the next starts from the seed."""


def test_any_annotation_gets_an_answer_and_leaves_nothing_half_written(
    seeded, token_client, capsys
):
    """A fresh seed each run, printed: DOCUMENT_FUZZ_SEED=<n> replays a failure."""
    run_seed = int(os.environ.get("DOCUMENT_FUZZ_SEED") or random.randrange(2**32))
    with capsys.disabled():
        print(f"\ndocument fuzzing: seed {run_seed} (replay: DOCUMENT_FUZZ_SEED={run_seed})")
    client = token_client(*CURATOR)
    before = counts()

    @hypothesis_seed(run_seed)
    @settings(max_examples=60, deadline=None, database=None)
    @given(document=_mangled_annotations())
    def answers(document):
        try:
            with transaction.atomic():
                response = post(client, document, dry_run="true")
                assert response.status_code in (200, 400), response.content
                assert counts() == before
                response = post(client, document)
                assert response.status_code in (201, 400), response.content
                if response.status_code == 400:
                    assert counts() == before
                else:
                    assert counts()["Source"] == before["Source"] + 1
                raise _Undo
        except _Undo:
            pass

    answers()


# Re-applying a corrected annotation: PUT /api/v1/documents/{id}/ ------------------

REAPPLIER = (
    *CURATOR,
    "change_source",
    "delete_evidence",
    "change_affiliation",
    "delete_affiliation",
    "change_event",
    "delete_event",
    "change_statement",
    "delete_statement",
)


def stored_border_talks(client) -> tuple[int, dict]:
    response = post(client, border_talks())
    assert response.status_code == 201, response.json()
    return int(response.json()["source"].rstrip("/").rsplit("/", 1)[1]), border_talks()


def put(client, pk, body, *, if_match="*", **query):
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    headers = {"HTTP_IF_MATCH": if_match} if if_match else {}
    return client.put(f"{DOCUMENTS}{pk}/{suffix}", body, format="json", **headers)


def corrected(body: dict) -> dict:
    """border_talks() corrected: the event's title fixed, the promise
    reworded, the assessment withdrawn and a new statement about the talks."""
    body = copy.deepcopy(body)
    annotation = body["annotation"]
    annotation["events"][0]["title"] = "Armenia and Azerbaijan hold EU-mediated talks"
    assessment, promise = annotation["statements"]
    promise["content"] = "Talks resume in April."
    annotation["statements"] = [
        promise,
        {
            "key": "mediation",
            "speaker": "european-union",
            "kind": "claim",
            "content": "The EU mediated the talks.",
            "date": assessment["date"],
            "about_events": ["brussels-talks"],
            "evidence": ["The talks were mediated by the EU"],
        },
    ]
    return body


@pytest.mark.django_db(transaction=True)  # a revision per request, as in use
def test_a_corrected_annotation_updates_creates_and_deletes_what_the_document_made(
    seeded, token_client
):
    client = token_client(*REAPPLIER, if_match=None)
    pk, body = stored_border_talks(client)
    document = client.get(f"{DOCUMENTS}{pk}/")
    assert document.status_code == 200 and document["ETag"] == '"1"'
    made = document.json()["records"]
    assert len(made["events"]) == 1 and len(made["statements"]) == 2
    talks = Event.objects.get(pk=made["events"][0])
    promise = Statement.objects.get(pk__in=made["statements"], kind="promise")
    assessment = Statement.objects.get(pk__in=made["statements"], kind="assessment")
    before = counts()

    # Unchanged: nothing is written, not even a revision of the source.
    response = put(client, pk, body, if_match='"1"')
    assert response.status_code == 200, response.json()
    assert response.json()["updated"] == [] and response.json()["deleted"] == []
    assert response["ETag"] == '"1"' and counts() == before

    # A dry run of the correction reports it and changes nothing.
    dry = put(client, pk, corrected(body), if_match='"1"', dry_run="true")
    assert dry.status_code == 200 and dry.json()["dry_run"] is True
    assert counts() == before

    response = put(client, pk, corrected(body), if_match='"1"')
    assert response.status_code == 200, response.json()
    report = response.json()
    assert {(c["resource"], c["id"]) for c in report["updated"]} == {
        ("sources", pk),
        ("events", talks.pk),
        ("statements", promise.pk),
    }
    assert report["deleted"] == [{"resource": "statements", "id": assessment.pk}]
    assert report["counts"]["statements"] == 1 and response["ETag"] == '"2"'
    talks.refresh_from_db()
    promise.refresh_from_db()
    assert talks.title == "Armenia and Azerbaijan hold EU-mediated talks" and talks.revision == 2
    assert promise.content == "Talks resume in April." and promise.revision == 2
    assert not Statement.objects.filter(pk=assessment.pk).exists()
    mediation = Statement.objects.get(content="The EU mediated the talks.")
    assert list(mediation.about_events.all()) == [talks]
    # History carries the document as the context of each change.
    update = talks.snapshots.get(pgh_label="update")
    assert update.pgh_context.metadata["via"] == "import"
    assert update.pgh_context.metadata["source_id"] == pk
    assert client.get(f"{DOCUMENTS}{pk}/").json()["records"]["statements"] == sorted(
        [promise.pk, mediation.pk]
    )
    # The old ETag is stale now.
    stale = put(client, pk, body, if_match='"1"')
    assert stale.status_code == 412 and stale.json()["current_revision"] == 2


@pytest.mark.django_db(transaction=True)  # a revision per request, as in use
def test_a_statement_gaining_its_first_target_is_reported_as_updated(seeded, token_client):
    """Only new rows change it (it had no target to delete): re-applying
    reads its revision after writing them, so they are written as they come."""
    client = token_client(*REAPPLIER, if_match=None)
    pk, body = stored_border_talks(client)
    promise = Statement.objects.get(kind="promise", evidence__source_id=pk)
    body["annotation"]["statements"][1]["targets"] = ["armenia"]
    response = put(client, pk, body, if_match='"1"')
    assert response.status_code == 200, response.json()
    assert {(c["resource"], c["id"]) for c in response.json()["updated"]} == {
        ("sources", pk),
        ("statements", promise.pk),
    }
    promise.refresh_from_db()
    assert promise.revision == 2 and [a.slug for a in promise.targets] == ["armenia"]


def test_reapplying_needs_if_match_the_same_text_and_permission(seeded, token_client):
    client = token_client(*REAPPLIER, if_match=None)
    pk, body = stored_border_talks(client)
    assert put(client, pk, body, if_match=None).status_code == 428
    assert put(client, pk, body, if_match="W/1").status_code == 400
    other_text = {**body, "text": body["text"] + " More."}
    response = put(client, pk, other_text)
    assert response.status_code == 400 and "never changes" in json.dumps(response.json())
    assert put(client, 10**9, body).status_code == 404
    assert put(token_client(*CURATOR), pk, body).status_code == 403
    # A problem in the correction: nothing changes, every problem is listed.
    broken = copy.deepcopy(body)
    broken["annotation"]["events"][0]["type"] = "MEET"
    broken["annotation"]["statements"][0]["evidence"] = ["not in the text at all"]
    before = counts()
    response = put(client, pk, broken)
    assert response.status_code == 400
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert {"/annotation/events/0/type", "/annotation/statements/0/evidence/0"} <= pointers
    assert counts() == before


def test_a_source_stored_on_its_own_cannot_be_matched_once_records_cite_it(seeded, token_client):
    client = token_client(*REAPPLIER, if_match=None)
    seed_source = Source.objects.get()
    seed_source.annotation = None  # as stored through /sources/ and cited by hand
    seed_source.save()
    response = put(client, seed_source.pk, border_talks() | {"text": seed_source.text})
    assert response.status_code == 409
    assert client.get(f"{DOCUMENTS}{seed_source.pk}/").json()["annotation"] is None


def test_posting_a_stored_text_again_points_at_reapplying(seeded, token_client):
    client = token_client(*REAPPLIER)
    pk, body = stored_border_talks(client)
    response = post(client, body)
    assert response.status_code == 400
    (error,) = [e for e in response.json()["errors"] if e["pointer"] == "/text"]
    assert f"already stored as source {pk}" in error["detail"]
    assert f"PUT it to /api/v1/documents/{pk}/" in error["hint"]
