"""The dyadic CSV of events, and the exports of statements, actors and
affiliations: their columns, their filters, their limits.

Exports read on connections and in transactions of their own (`SET
TRANSACTION`), so these tests run outside a test transaction, and read and
close each streaming response."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.db import connection

from actors.models import Actor
from events.export import (
    ACTOR_EXPORT,
    AFFILIATION_EXPORT,
    STATEMENT_EXPORT,
    dyadic_columns,
    slices,
)
from events.models import Event
from tests.factories import ActorFactory, EventParticipantFactory

pytestmark = pytest.mark.django_db(transaction=True)

EXPORT = "/api/v1/events/export"
API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
# (export, list, its columns, filters the list takes)
TABLES = [
    ("/api/v1/statements/export", "/api/v1/statements/", STATEMENT_EXPORT, {"speaker": "armenia"}),
    ("/api/v1/actors/export", "/api/v1/actors/", ACTOR_EXPORT, {"kind": "country"}),
    (
        "/api/v1/affiliations/export",
        "/api/v1/affiliations/",
        AFFILIATION_EXPORT,
        {"actor": "armenia"},
    ),
]


def body(response) -> str:
    assert response.status_code == 200, response.content
    try:
        return b"".join(response.streaming_content).decode()
    finally:
        response.close()


def read_csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response))))


def header(response) -> list[str]:
    return next(csv.reader(io.StringIO(body(response))))


def read_jsonl(response) -> list[dict]:
    return [json.loads(line) for line in body(response).splitlines()]


def listed_ids(api, url: str, params: dict) -> list[int]:
    page = api.get(url, {**params, "page_size": 100}).json()
    assert page["next"] is None
    return sorted(record["id"] for record in page["results"])


def sides(rows: list[dict], title: str) -> list[tuple[str, str, str, str, str]]:
    event_id = Event.objects.get(title=title).pk
    return [
        (
            r["actor1_name"],
            r["actor1_role"],
            r["actor2_name"],
            r["actor2_role"],
            r["associated_actors"],
        )
        for r in rows
        if int(r["event_id"]) == event_id
    ]


# The dyadic CSV ---------------------------------------------------------------


def test_the_dyadic_header_is_the_documented_columns(api, seeded):
    response = api.get(EXPORT, {"format": "dyadic"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="events.dyadic.csv"'
    columns = header(response)
    assert columns == list(dyadic_columns("")) and columns[0] == "event_id"
    documented = API_DOC.read_text()
    for column in columns:
        assert f"| `{column}` |" in documented, column


def test_dyadic_rows_follow_the_documented_rule_on_the_seed(api, seeded):
    rows = read_csv(api.get(EXPORT, {"format": "dyadic"}))
    # Every event, in id order, with at least one row.
    ids = [int(r["event_id"]) for r in rows]
    assert ids == sorted(ids)
    assert set(ids) == set(Event.objects.values_list("id", flat=True))
    assert len(rows) == 15  # 14 events; the summons has two targets
    # Each initiator with each target, in the order they are listed.
    assert sides(rows, "Russia summons the Armenian ambassador") == [
        ("Russia", "initiator", "Armenia", "target", ""),
        ("Russia", "initiator", "Armenian ambassador to Russia", "target", ""),
    ]
    # Participants beside an initiator or a target are associated actors.
    assert sides(rows, "Armenia invites U.S. soldiers for joint military exercises") == [
        ("Armenia", "initiator", "United States", "target", "U.S. soldiers"),
    ]
    # No initiator nor target: the participants in pairs; mediators are associated.
    assert sides(rows, "Talks on the conflict mediated by the U.S., EU and Russia") == [
        (
            "Armenia",
            "participant",
            "Azerbaijan",
            "participant",
            "United States; European Union; Russia",
        ),
    ]
    # One side only: its actors, the other side empty.
    assert sides(rows, "Collapse of the Soviet Union") == [
        ("Soviet Union", "participant", "", "", "")
    ]
    assert sides(rows, "Russia intervenes in the first Nagorno-Karabakh war") == [
        ("Russia", "initiator", "", "", "")
    ]
    assert sides(rows, "Ethnic cleansing of Armenians in Nagorno-Karabakh") == [
        ("", "", "Ethnic Armenians of Nagorno-Karabakh", "target", "")
    ]
    talks = next(r for r in rows if r["title"].startswith("Talks on the conflict"))
    mediators = [
        Actor.objects.get(slug=s).pk for s in ("united-states", "european-union", "russia")
    ]
    assert talks["associated_actor_ids"] == ";".join(map(str, mediators))
    assert talks["actor1_id"] == str(Actor.objects.get(slug="armenia").pk)
    assert talks["actor1_country"] == "ARM" and talks["actor1_kind"] == "country"
    assert talks["event_url"].endswith(f"/api/v1/events/{talks['event_id']}/")


def test_two_initiators_and_one_target_are_two_rows_and_the_filters_apply(api, seeded):
    invasion = Event.objects.get(title="Russia invades Ukraine")
    EventParticipantFactory(
        event=invasion, role="initiator", actor=ActorFactory(slug="belarus", name="Belarus")
    )
    rows = read_csv(api.get(EXPORT, {"format": "dyadic", "type": "ASSAULT", "actor": "belarus"}))
    assert sides(rows, "Russia invades Ukraine") == [
        ("Russia", "initiator", "Ukraine", "target", ""),
        ("Belarus", "initiator", "Ukraine", "target", ""),
    ]
    assert {r["event_id"] for r in rows} == {str(invasion.pk)}
    assert {
        r["type"] for r in read_csv(api.get(EXPORT, {"format": "dyadic", "type": "CONSULT"}))
    } == {"CONSULT"}


def test_dyadic_cells_are_formula_safe(api, seeded):
    EventParticipantFactory(
        event=Event.objects.get(title="Russia invades Ukraine"),
        role="initiator",
        actor=ActorFactory(slug="formula", name='=HYPERLINK("http://x")'),
    )
    rows = read_csv(api.get(EXPORT, {"format": "dyadic", "actor": "formula"}))
    assert [r["actor1_name"] for r in rows] == ["Russia", '\'=HYPERLINK("http://x")']


# Statements, actors and affiliations -----------------------------------------


@pytest.mark.parametrize(("url", "list_url", "spec", "filters"), TABLES)
def test_jsonl_exports_are_the_lists_records_filtered_alike(
    api, seeded, url, list_url, spec, filters
):
    for params in ({}, filters):
        response = api.get(url, {**params, "format": "jsonl"})
        assert response["Content-Type"] == "application/x-ndjson"
        records = read_jsonl(response)
        assert [r["id"] for r in records] == listed_ids(api, list_url, params)
        assert records and all(list(r) == ["id", "url", *spec.columns] for r in records)
    record = records[0]
    detail = api.get(record["url"]).json()
    for field in ("id", "revision", "created_at", "updated_at"):
        assert record[field] == detail[field]
    if "evidence" in record:
        assert record["evidence"] == detail["evidence"]


@pytest.mark.parametrize(("url", "list_url", "spec", "filters"), TABLES)
def test_csv_exports_have_the_documented_header(api, seeded, url, list_url, spec, filters):
    response = api.get(url)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{spec.noun}.csv"'
    rows = read_csv(response)
    assert list(rows[0]) == ["id", "url", *spec.columns]
    assert [int(r["id"]) for r in rows] == listed_ids(api, list_url, {})
    doc = API_DOC.read_text()
    section = doc[doc.index("### Statements, actors and affiliations") :]
    section = section[: section.index("\n### ")]
    for column in spec.columns:
        assert f"`{column}`" in section, column


def test_a_statements_record_holds_its_actors_and_events(api, seeded):
    records = read_jsonl(api.get("/api/v1/statements/export", {"format": "jsonl"}))
    for record in records:
        statement = api.get(record["url"]).json()
        assert record["speaker_id"] == statement["speaker"]["id"]
        assert record["speaker_name"] == statement["speaker"]["name"]
        assert record["content"] == statement["content"]
        assert [t["actor"] for t in record["targets"]] == [t["id"] for t in statement["targets"]]
        assert [t["actor"] for t in record["about_actors"]] == [
            t["id"] for t in statement["about_actors"]
        ]
        assert record["about_events"] == [e["id"] for e in statement["about_events"]]


def test_an_actors_record_holds_its_aliases_and_identifiers(api, seeded):
    for record in read_jsonl(api.get("/api/v1/actors/export", {"format": "jsonl"})):
        actor = api.get(record["url"]).json()
        for field in ("slug", "name", "kind", "country", "sector", "description", "aliases"):
            assert record[field] == actor[field], field
        assert record["identifiers"] == actor["identifiers"]


def test_actor_cells_are_formula_safe_in_csv_and_as_they_are_in_jsonl(api, seeded):
    ActorFactory(slug="formula", name="@SUM(A1)", description="-2+3")
    url = "/api/v1/actors/export"
    (row,) = read_csv(api.get(url, {"q": "@SUM"}))
    assert (row["name"], row["description"]) == ("'@SUM(A1)", "'-2+3")
    (record,) = read_jsonl(api.get(url, {"q": "@SUM", "format": "jsonl"}))
    assert (record["name"], record["description"]) == ("@SUM(A1)", "-2+3")


@pytest.mark.parametrize("url", [t[0] for t in TABLES])
def test_an_anonymous_export_over_the_cap_is_refused_with_403(
    api, seeded, settings, token_client, url
):
    settings.EXPORT_ANON_MAX_ROWS = 2
    response = api.get(url)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:event-ledger:problem:export-too-large"
    noun = url.split("/")[3]
    assert f"at most 2 {noun}" in problem["detail"]
    assert len(read_csv(token_client().get(url))) > 2  # signed in: no cap


@pytest.mark.parametrize("url", [t[0] for t in TABLES])
def test_bad_formats_and_filters_are_refused_with_400(api, seeded, url):
    for params in ({"format": "xml"}, {"format": "dyadic"}, {"colour": "red"}):
        response = api.get(url, params)
        assert response.status_code == 400, params
        assert response["Content-Type"] == "application/problem+json"
    problem = api.get(url, {"format": "dyadic"}).json()
    assert problem["errors"][0]["parameter"] == "format"


def test_the_event_export_refuses_an_unknown_format_naming_dyadic(api, seeded):
    response = api.get(EXPORT, {"format": "xml"})
    assert response.status_code == 400
    assert "dyadic" in response.json()["errors"][0]["detail"]


def test_a_sliced_dyadic_export_is_the_same_file(api, seeded, settings):
    whole = body(api.get(EXPORT, {"format": "dyadic"}))
    settings.EXPORT_PARALLEL_MIN_EVENTS = 1
    settings.EXPORT_SLICE_EVENTS = 3  # 14 events: five slices, two connections
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")  # slices() reads the planner's row count
    assert len(slices(filtered=False)) > 2
    assert body(api.get(EXPORT, {"format": "dyadic"})) == whole


@pytest.mark.parametrize(
    "url", ["/api/v1/events/export", "/api/v1/actors/export", "/api/v1/affiliations/export"]
)
def test_an_empty_format_is_a_400_not_the_default(seeded, api, url):
    """Found by Schemathesis (FUZZ_SEED=1152406997): `format=` was served as CSV."""
    response = api.get(url, {"format": ""})
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameter"] == "format"
