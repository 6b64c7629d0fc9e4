"""PLOVER records: GET /api/v1/events/export/plover writes them, POST
/api/v1/documents/plover/ reads them through the documents path."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actors.models import Actor
from events.models import Event, EventParticipant, Place
from ledger.models import Change
from sources.models import Evidence, Source
from sources.services import Span, evidence_attach, source_create

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/events/export/plover"
IMPORT = "/api/v1/documents/plover/"
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


def export(client, query: str = "") -> bytes:
    response = client.get(EXPORT + query)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    return b"".join(response.streaming_content)


def records(content: bytes) -> list[dict]:
    return [json.loads(line) for line in content.decode().splitlines()]


def post(client, body: str | bytes, **query):
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return client.post(IMPORT + suffix, body, content_type="application/x-ndjson")


def counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Source, Evidence, Actor, Place, Event, EventParticipant, Change)
    }


def empty_the_ledger() -> None:
    """Every actor, place, source and event gone, as in a new database."""
    tables = [
        name
        for name in connection.introspection.table_names()
        if name.split("_")[0] in ("events", "actors", "sources")
    ]
    with connection.cursor() as cursor:
        # The seed's deferred checks run now (a TRUNCATE refuses to run with
        # them pending), and the import's are deferred again, as at a commit.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_each_event_is_one_plover_record(seeded, api):
    lines = records(export(api))
    assert len(lines) == Event.objects.count() == 14
    record = next(r for r in lines if r["id"].endswith(":russia-invades-ukraine"))
    source = Source.objects.get()
    assert record["id"] == f"{source.sha256[:12]}:russia-invades-ukraine"
    assert record["event"] == ["ASSAULT"] and record["quad_code"] == 4
    assert record["actor"][0] == {
        "code": "RUS",
        "sector": None,
        "identifier_id": "Q159",
        "identifier_text": "Russia",
        "key": "russia",
        "kind": "country",
        "role": "initiator",
    }
    assert [entity["key"] for entity in record["recipient"]] == ["ukraine"]
    assert record["text"] == source.text
    for quote, span in zip(record["event_text"], record["text_info"], strict=True):
        assert source.text[span["start"] : span["end"]] == quote
    assert record["cite_info"]["citation"] == f"sha256:{source.sha256}"
    assert record["cite_info"]["codebook"] == "el-plover-1.0"
    assert record["cite_info"]["published_on"] == "2023-11-09"


def test_the_plover_export_is_one_copy(seeded, api):
    with CaptureQueriesContext(connection) as captured:
        assert len(records(export(api))) == 14
    statements = [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]
    # Whether an anonymous client may export that many, whether to cut it into
    # slices (14 events: no), its statement timeout, the COPY.
    assert len(statements) == 4
    assert statements[3].startswith("COPY (") and "events_ploverrecord" in statements[3]


@pytest.mark.django_db(transaction=True)
def test_a_plover_export_in_parallel_slices_equals_the_single_statement(seeded, api, settings):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE events_event")  # the slicing reads the row estimate
    settings.EXPORT_PARALLEL_MIN_EVENTS = 10**9
    whole = export(api)
    settings.EXPORT_PARALLEL_MIN_EVENTS, settings.EXPORT_SLICE_EVENTS = 1, 3
    with CaptureQueriesContext(connection) as captured:
        sliced = export(api)
    assert len([q for q in captured if q["sql"].startswith("COPY")]) == 3
    assert sliced == whole and len(whole.splitlines()) == 14


def test_the_plover_export_takes_the_event_lists_filters(seeded, api):
    lines = records(export(api, "?type=ASSAULT"))
    assert lines and {tuple(r["event"]) for r in lines} == {("ASSAULT",)}
    assert len(lines) == Event.objects.filter(type="ASSAULT").count()


def test_an_unknown_filter_is_refused(seeded, api):
    response = api.get(EXPORT + "?colour=red")
    assert response.status_code == 400


def test_the_seed_round_trips_to_the_same_file(seeded, api, token_client):
    first = export(api)
    empty_the_ledger()
    assert Event.objects.count() == 0 and Actor.objects.count() == 0

    response = post(token_client(*CURATOR), first)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["valid"] is True and body["problems"] == []
    assert body["documents"][0]["counts"]["events"] == 14

    assert export(api) == first


def test_a_dry_run_reports_and_stores_nothing(seeded, api, token_client):
    content = export(api)
    empty_the_ledger()
    before = counts()
    response = post(token_client(*CURATOR), content, dry_run="true")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["dry_run"] is True and body["valid"] is True
    assert body["documents"][0]["source"] is None
    assert body["documents"][0]["counts"]["events"] == 14
    assert counts() == before


def test_the_import_is_recorded_in_history(seeded, api, token_client):
    content = export(api)
    empty_the_ledger()
    post(token_client(*CURATOR), content)
    event = Event.objects.order_by("id").first()
    snapshot = event.snapshots.select_related("pgh_context").get()
    assert snapshot.pgh_context.metadata["via"] == "import"
    assert snapshot.pgh_context.metadata["format"] == "plover"


def test_a_text_already_stored_is_refused(seeded, api, token_client):
    content = export(api)
    before = counts()
    response = post(token_client(*CURATOR), content)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors and {error["code"] for error in errors} == {"unique"}
    assert counts() == before


def bad_body(api) -> tuple[list[str], dict]:
    """The seed's records, as text, with three of them spoiled."""
    lines = export(api).decode().splitlines()
    second, fifth, ninth = (json.loads(lines[i]) for i in (1, 4, 8))
    second["event"] = ["BOMBARD"]
    fifth["text_info"][0]["end"] = len(fifth["text"]) + 10
    ninth["actor"][0]["code"] = "usa"
    lines[1], lines[4], lines[8] = (json.dumps(r) for r in (second, fifth, ninth))
    return lines, {"second": second, "fifth": fifth, "ninth": ninth}


def test_every_bad_record_is_named_by_line_and_nothing_is_written(seeded, api, token_client):
    lines, _ = bad_body(api)
    empty_the_ledger()
    before = counts()
    response = post(token_client(*CURATOR), "\n".join(lines) + "\n")
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "urn:event-ledger:problem:validation-error"
    assert "3 record(s)" in problem["detail"]
    by_line = {(e["line"], e["pointer"], e["code"]): e["detail"] for e in problem["errors"]}
    assert by_line == {
        (2, "/1/event/0", "unknown_code"): "unknown event code 'BOMBARD'.",
        (5, "/4/text_info/0", "offset_out_of_range"): by_line[
            (5, "/4/text_info/0", "offset_out_of_range")
        ],
        (9, "/8/actor/0/code", "unknown_code"): "unknown actor code 'usa'.",
    }
    assert "outside the text" in by_line[(5, "/4/text_info/0", "offset_out_of_range")]
    assert counts() == before


def test_a_dry_run_lists_bad_records_too(seeded, api, token_client):
    lines, _ = bad_body(api)
    empty_the_ledger()
    response = post(token_client(*CURATOR), "\n".join(lines), dry_run="true")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert [problem["line"] for problem in body["problems"]] == [2, 5, 9]


def test_an_unknown_actor_is_named_at_its_record(seeded, api, token_client):
    lines = export(api).decode().splitlines()
    record = json.loads(lines[3])
    record["recipient"] = [{"code": "XYZ"}]  # no key: a stored actor with ISO 3166 code XYZ
    lines[3] = json.dumps(record)
    empty_the_ledger()
    response = post(token_client(*CURATOR), "\n".join(lines))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["line"], e["code"]) for e in errors] == [(4, "unknown_reference")]
    assert "iso3166:XYZ" in errors[0]["detail"]
    assert Event.objects.count() == 0


def test_a_line_that_is_not_json_is_named(db, token_client):
    response = post(token_client(*CURATOR), '{"id": "a"\n[1, 2]\n')
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["line"], e["code"]) for e in errors] == [(1, "parse_error"), (2, "invalid")]


def test_an_empty_body_is_a_problem(db, token_client):
    response = post(token_client(*CURATOR), "")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "empty"


def test_importing_takes_a_curators_permissions(db, api):
    response = post(api, "{}")
    assert response.status_code in (401, 403)


def test_records_may_come_as_a_json_body(seeded, api, token_client):
    content = export(api)
    lines, _ = bad_body(api)
    empty_the_ledger()
    client = token_client(*CURATOR)

    spoiled = {"records": [json.loads(line) for line in lines]}
    response = client.post(IMPORT, spoiled, format="json")
    assert response.status_code == 400
    pointers = [(e["line"], e["pointer"]) for e in response.json()["errors"]]
    assert pointers == [
        (2, "/records/1/event/0"),
        (5, "/records/4/text_info/0"),
        (9, "/records/8/actor/0/code"),
    ]
    assert Event.objects.count() == 0

    response = client.post(IMPORT, {"records": records(content)}, format="json")
    assert response.status_code == 201, response.json()
    assert export(api) == content


def test_a_json_body_takes_records_only(db, token_client):
    response = token_client(*CURATOR).post(IMPORT, {"records": [], "colour": "red"}, format="json")
    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == ["/colour"]


def test_an_event_citing_two_documents_is_written_once(seeded, api, token_client):
    event = Event.objects.get(title__startswith="Russia invades")
    seed = Source.objects.get()
    other = source_create(text="Russia invaded Ukraine, the agency reported.")
    evidence_attach(record=event, spans=[Span(source=other, start=0, end=22)])

    content = export(api)
    lines = records(content)
    assert len(lines) == Event.objects.count()
    first, second = sorted([seed, other], key=lambda source: source.sha256)
    number, record = next((n, r) for n, r in enumerate(lines, 1) if r["title"] == event.title)
    assert record["cite_info"]["citation"] == f"sha256:{first.sha256}"
    assert record["text"] == first.text
    elsewhere = event.evidence.filter(source=second).order_by("start", "end", "id")
    assert record["other_evidence"] == [
        {"citation": f"sha256:{second.sha256}", "start": v.start, "end": v.end, "quote": v.quote}
        for v in elsewhere
    ]

    # Imported, the passages elsewhere are left out, and the report says so.
    empty_the_ledger()
    response = post(token_client(*CURATOR), content)
    assert response.status_code == 201, response.json()
    ignored = response.json()["ignored"]
    assert [(i["line"], i["pointer"]) for i in ignored] == [
        (number, f"/{number - 1}/other_evidence")
    ]
    assert Event.objects.get(title=event.title).evidence.count() == len(record["text_info"])


SPOILERS = [
    ("event", "ASSAULT"),
    ("event", [1]),
    ("event", []),
    ("text_info", [{"start": "0", "end": 5}]),
    ("text_info", [{"start": 5, "end": 5}]),
    ("text_info", [{"start": -1, "end": 5}]),
    ("text_info", "0-5"),
    ("event_text", ["not the text"]),
    ("cite_info", "a citation"),
    ("cite_info", {"codebook": "plover-base-1.3.1"}),
    ("actor", [{"key": ["russia"]}]),
    ("actor", [{"key": "russia", "sector": "XYZ"}]),
    ("actor", [{"key": "russia", "role": "target"}]),
    ("actor", [{}]),
    ("actor", "RUS"),
    ("recipient", [7]),
    ("event_loc", {"key": {"a": 1}}),
    ("event_loc", "Ukraine"),
    ("context", "military"),
    ("mode", ["invasion", "war"]),
    ("date", "yesterday"),
    ("date_precision", "fortnight"),
    ("id", None),
    ("text", None),
    ("title", ["a"]),
]


def test_malformed_records_are_each_a_problem_at_their_line(seeded, api, token_client):
    lines = export(api).decode().splitlines()
    empty_the_ledger()
    client = token_client(*CURATOR)
    for name, value in SPOILERS:
        record = json.loads(lines[2])
        record[name] = value
        body = "\n".join([lines[0], lines[1], json.dumps(record), *lines[3:]])
        response = post(client, body)
        assert response.status_code == 400, (name, value, response.content)
        assert {e["line"] for e in response.json()["errors"]} == {3}, (name, value)
    for body in ("[]", '{"id": NaN}', "\x00", "null"):
        response = post(client, body)
        assert response.status_code == 400, (body, response.content)
    assert Event.objects.count() == 0
