"""The quickstart server: `make run` serves the API with Django's development
server (wsgiref), which is stricter about headers than gunicorn. Every write of
every resource goes through it over real HTTP, and its log stays free of
tracebacks. (A `Location` that was a str subclass once made every create answer
500 there while every other test passed.)"""

import os
import uuid

import pytest

from tests.live import Service, call, dev_server

pytestmark = pytest.mark.skipif("DATABASE_URL" in os.environ, reason="runs on the embedded server")

TEXT = (
    "Quickstartia and Smoketown Republic held border talks in Checkpoint City on Friday. "
    "The foreign minister of Quickstartia, speaking for its delegation, said the talks "
    "were constructive and called on Smoketown Republic to reopen the crossing."
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with dev_server(tmp_path_factory.mktemp("runserver")) as service:
        yield service


def api(server: Service, path: str) -> str:
    return f"{server.url}/api/v1/{path}"


def auth(server: Service, **headers: str) -> dict:
    return {"Authorization": f"Token {server.token}", **headers}


def assert_no_traceback(server: Service) -> None:
    log = server.log.read_text()
    assert "Traceback" not in log, log[-6000:]
    assert " 500 " not in log and "Internal Server Error" not in log, log[-6000:]


def create(server: Service, resource: str, body: dict, **headers: str) -> dict:
    status, response_headers, data = call(
        "POST", api(server, f"{resource}/"), body, auth(server, **headers)
    )
    assert status == 201, (resource, status, data)
    location = response_headers["Location"]
    assert location == data["url"]
    assert response_headers["ETag"] == f'"{data["revision"]}"'
    status, _, fetched = call("GET", location)
    assert status == 200, (location, status, fetched)
    assert fetched["id"] == data["id"]
    return data


def change(server: Service, record: dict, changes: dict) -> dict:
    etag = f'"{record["revision"]}"'
    status, headers, data = call(
        "PATCH", record["url"], changes, auth(server, **{"If-Match": etag})
    )
    assert status == 200, (record["url"], status, data)
    assert headers["ETag"] == f'"{record["revision"] + 1}"' != etag
    assert {field: data[field] for field in changes} == changes
    status, _, fetched = call("GET", record["url"])
    assert status == 200
    assert fetched["revision"] == record["revision"] + 1
    return data


def delete(server: Service, record: dict) -> None:
    etag = f'"{record["revision"]}"'
    status, _, data = call("DELETE", record["url"], headers=auth(server, **{"If-Match": etag}))
    assert status == 204, (record["url"], status, data)
    status, _, problem = call("GET", record["url"])
    assert status == 410, (record["url"], status, problem)
    assert problem["history_url"].startswith(record["url"])


def test_every_resource_is_created_changed_and_deleted_over_http(server):
    source = create(
        server,
        "sources",
        {
            "title": "Talks at the checkpoint",
            "publisher": "Quickstart Wire",
            "document_url": "https://news.example.org/quickstart",
            "published_on": "2024-03-15",
            "language": "en",
            "text": TEXT,
        },
    )
    place = create(
        server,
        "places",
        {"slug": "quickstart-checkpoint", "name": "Checkpoint City", "kind": "city"},
    )
    country = create(
        server,
        "actors",
        {"slug": "quickstartia", "name": "Quickstartia", "kind": "country", "aliases": ["QS"]},
    )
    other = create(
        server,
        "actors",
        {"slug": "smoketown-republic", "name": "Smoketown Republic", "kind": "country"},
    )
    minister = create(
        server,
        "actors",
        {"slug": "quickstartia-minister", "name": "Foreign minister", "kind": "person"},
    )
    evidence = [{"source": source["id"], "quote": "held border talks in Checkpoint City"}]
    event = create(
        server,
        "events",
        {
            "type": "CONSULT",
            "title": "Quickstartia and Smoketown Republic hold border talks",
            "date_start": "2024-03-15",
            "date_end": "2024-03-15",
            "date_precision": "day",
            "place": place["id"],
            "participants": [
                {"actor": country["id"], "role": "participant"},
                {"actor": other["id"], "role": "participant"},
            ],
            "evidence": evidence,
        },
    )
    assert event["evidence"][0]["quote"] == evidence[0]["quote"]
    statement = create(
        server,
        "statements",
        {
            "speaker": minister["id"],
            "kind": "appeal",
            "content": "Calls on Smoketown Republic to reopen the crossing.",
            "date_end": "2024-03-15",
            "targets": [other["id"]],
            "about_events": [event["id"]],
            "evidence": [{"source": source["id"], "quote": "called on Smoketown Republic"}],
        },
    )
    affiliation = create(
        server,
        "affiliations",
        {
            "member": minister["id"],
            "organization": country["id"],
            "role": "Foreign minister",
            "evidence": [{"source": source["id"], "quote": "The foreign minister of Quickstartia"}],
        },
    )

    change(server, source, {"title": "Border talks at the checkpoint"})
    place = change(server, place, {"name": "Checkpoint"})
    country = change(server, country, {"description": "A country made up for this test."})
    other = change(server, other, {"aliases": ["Smoketown"]})
    minister = change(server, minister, {"description": "Speaks for Quickstartia."})
    event = change(server, event, {"summary": "Talks about the border crossing."})
    statement = change(server, statement, {"stance": "critical"})
    affiliation = change(server, affiliation, {"role": "Minister of Foreign Affairs"})

    # Referencing records first, so that nothing deleted is still referenced.
    for record in (statement, event, affiliation, minister, other, country, place):
        delete(server, record)
    assert_no_traceback(server)


def test_a_retried_create_with_an_idempotency_key_answers_the_same_and_creates_once(server):
    key = f"quickstart-{uuid.uuid4()}"
    body = {"slug": "quickstart-retry", "name": "Retried Actor", "kind": "group"}
    headers = auth(server, **{"Idempotency-Key": key})
    first = call("POST", api(server, "actors/"), body, headers)
    again = call("POST", api(server, "actors/"), body, headers)
    assert first[0] == again[0] == 201, (first, again)
    assert again[2] == first[2]
    assert again[1]["Location"] == first[1]["Location"] == first[2]["url"]
    assert again[1]["Idempotent-Replayed"] == "true"
    assert call("GET", first[1]["Location"])[0] == 200
    status, _, listed = call("GET", api(server, "actors/?q=Retried+Actor"))
    assert status == 200
    assert [actor["id"] for actor in listed["results"]] == [first[2]["id"]]
    assert_no_traceback(server)
