"""The change feed: a client can mirror the dataset from the feed alone."""

import random

import pytest

from tests.factories import SourceFactory

pytestmark = pytest.mark.django_db(transaction=True)

FEED = "/api/v1/changes/"
RESOURCES = ["actors", "places", "events"]


def read_feed(client, after: str | None = None, **params) -> tuple[list[dict], str]:
    """Every change after `after`, following `next`; returns them and the last cursor."""
    changes, query = [], {"page_size": 7, **params}
    if after:
        query["after"] = after
    body = client.get(FEED, query).json()
    changes += body["results"]
    while body["next"]:
        body = client.get(body["next"]).json()
        changes += body["results"]
    return changes, body["cursor"]


def apply(mirror: dict, changes: list[dict]) -> None:
    """The documented sync rule: per record keep the highest revision; a null
    `data` means the record is gone; `data` with `merged_into` is a redirect
    to that record, not a record of its own."""
    for change in changes:
        key = (change["resource"], change["id"])
        if change["data"] is None:
            mirror.pop(key, None)
            mirror[key] = None
        elif change["data"].get("merged_into") is not None:
            mirror.pop(key, None)
        elif mirror.get(key, {"revision": 0}) is not None and (
            change["data"]["revision"] >= mirror.get(key, {"revision": 0})["revision"]
        ):
            mirror[key] = change["data"]


def resolve_references(state: dict) -> dict:
    """A mirror keeps records by id and shows a nested reference (an event's
    participant, its place) from its own copy of the referenced record, since
    renaming an actor is a change of the actor, not of every event it is in."""
    resolved = {}
    for (resource, pk), record in state.items():
        record = dict(record)
        if resource == "events":
            record["participants"] = [
                {**p, "actor": {**p["actor"], **_ref(state, "actors", p["actor"]["id"])}}
                for p in record["participants"]
            ]
            if record["place"]:
                place = _ref(state, "places", record["place"]["id"], ("name", "kind", "country"))
                record["place"] = {**record["place"], **place}
        resolved[(resource, pk)] = record
    return resolved


def _ref(state, resource, pk, fields=("name", "kind")) -> dict:
    record = state[(resource, pk)]
    return {field: record[field] for field in fields}


def current_state(client) -> dict:
    state = {}
    for resource in RESOURCES:
        url = f"/api/v1/{resource}/?page_size=500"
        while url:
            body = client.get(url).json()
            state.update({(resource, row["id"]): row for row in body["results"]})
            url = body["next"]
    return state


def test_a_mirror_built_from_the_feed_equals_the_current_state(api, token_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min"},
    }
    writer = token_client(
        *[
            f"{verb}_{model}"
            for verb in ("add", "change", "delete")
            for model in ("actor", "place", "event")
        ]
    )
    source = SourceFactory(text=MIRROR_SOURCE_TEXT)
    mirror_from_the_feed(writer, api, source.pk)


MIRROR_SOURCE_TEXT = "Armenia and Azerbaijan held talks. Russia mediated them."


def mirror_from_the_feed(writer, reader, source_id: int, before_sync=None) -> None:
    """90 random writes (creates, updates, merges, unmerges, deletes) by
    `writer`, while `reader` keeps a mirror from the feed, syncing every 30
    steps from its last cursor (`before_sync(step)` first, when given); at the
    end the mirror equals the current state, and the feed has nothing more.
    The clients are Django test clients or anything with their get, post,
    patch and delete (tests/ledger/test_replicas.py runs it over HTTP)."""
    rng = random.Random(20231109)
    actors, places, events, merges = [], [], [], []
    mirror: dict = {}
    cursor = None
    for step in range(90):
        choice = rng.random()
        if choice < 0.2 or len(actors) < 2:
            response = writer.post(
                "/api/v1/actors/",
                {"slug": f"actor-{step}", "name": f"Actor {step}", "kind": "group"},
                format="json",
            )
            actors.append(response.json()["id"])
        elif choice < 0.3:
            response = writer.post(
                "/api/v1/places/",
                {"slug": f"place-{step}", "name": f"Place {step}", "kind": "city"},
                format="json",
            )
            places.append(response.json()["id"])
        elif choice < 0.5:
            response = writer.post(
                "/api/v1/events/",
                {
                    "type": rng.choice(["CONSULT", "AGREE", "ASSAULT"]),
                    "title": f"Event {step}",
                    "date_end": "2023-11-09",
                    "date_precision": "unknown",
                    "place": rng.choice(places) if places and rng.random() < 0.5 else None,
                    "participants": [{"actor": rng.choice(actors), "role": "initiator"}],
                    "evidence": [
                        {"source": source_id, "quote": "Armenia and Azerbaijan held talks"}
                    ],
                },
                format="json",
            )
            events.append(response.json()["id"])
        elif choice < 0.75 and events:
            response = writer.patch(
                f"/api/v1/events/{rng.choice(events)}/",
                {
                    "title": f"Renamed at {step}",
                    "participants": [{"actor": rng.choice(actors), "role": "target"}],
                },
                format="json",
            )
        elif choice < 0.85:
            response = writer.patch(
                f"/api/v1/actors/{rng.choice(actors)}/",
                {"name": f"Actor renamed at {step}", "aliases": [f"alias {step}"]},
                format="json",
            )
        elif choice < 0.89 and len(actors) > 2:
            # A duplicate merged into another actor: its events move there.
            merged, into = rng.sample(actors, 2)
            target = writer.get(f"/api/v1/actors/{into}/").json()
            response = writer.post(
                f"/api/v1/actors/{merged}/merge/",
                {"into": into, "into_revision": target["revision"], "reason": "duplicate"},
                format="json",
            )
            if response.status_code == 200:
                actors.remove(merged)
                merges.append(merged)
        elif choice < 0.91 and merges:
            # Undone: the merged actor is back, with what the merge moved.
            merged = merges.pop(rng.randrange(len(merges)))
            response = writer.post(
                f"/api/v1/actors/{merged}/unmerge/", {"reason": "not one"}, format="json"
            )
            if response.status_code == 200:
                actors.append(merged)
        elif choice < 0.95 and events:
            response = writer.delete(f"/api/v1/events/{events.pop(rng.randrange(len(events)))}/")
        else:
            # Deleting an actor still in an event is refused (409): also a valid outcome.
            deleted = rng.choice(actors)
            response = writer.delete(f"/api/v1/actors/{deleted}/")
            if response.status_code == 204:
                actors.remove(deleted)
        assert response.status_code in (200, 201, 204, 409), response.content
        if step % 30 == 29:  # a client syncing now and then, from its last cursor
            if before_sync:
                before_sync(step)
            changes, cursor = read_feed(reader, cursor, resource=RESOURCES)
            apply(mirror, changes)

    if before_sync:
        before_sync(None)
    changes, cursor = read_feed(reader, cursor, resource=RESOURCES)
    apply(mirror, changes)
    live = {key: value for key, value in mirror.items() if value is not None}
    assert resolve_references(live) == current_state(reader)
    assert any(value is None for value in mirror.values()), "the run deleted something"
    assert merges, "the run merged actors and left some merged"
    # Nothing new: the cursor stays put and the answer is empty.
    again = reader.get(FEED, {"after": cursor}).json()
    assert again == {"next": None, "cursor": cursor, "results": []}


def test_deletions_appear_as_tombstones(api, token_client):
    writer = token_client("add_actor", "delete_actor")
    actor = writer.post(
        "/api/v1/actors/", {"slug": "gone", "name": "Gone", "kind": "group"}, format="json"
    ).json()
    writer.delete(f"/api/v1/actors/{actor['id']}/")
    changes, _ = read_feed(api, resource=["actors"])
    assert [(c["action"], c["revision"], c["data"]) for c in changes] == [
        ("create", 1, None),
        ("delete", 2, None),  # a delete is a revision of its own, as in the history
    ]
    assert changes[0]["url"] == f"http://testserver/api/v1/actors/{actor['id']}/"


def test_the_feed_covers_writes_outside_the_api(api, seeded):
    changes, _ = read_feed(api, page_size=1000)
    assert {c["resource"] for c in changes} == {
        "actors",
        "affiliations",
        "events",
        "places",
        "sources",
        "statements",
    }
    assert len(changes) == 13 + 4 + 14 + 5 + 1 + 8
    statements, _ = read_feed(api, resource=["statements"])
    assert len(statements) == 8 and all(c["data"]["revision"] == 1 for c in statements)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"after": "not-a-cursor"}, "after"),
        ({"resource": "cats"}, "resource"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1001"}, "page_size"),
    ],
)
def test_bad_feed_parameters_are_refused(api, params, parameter):
    response = api.get(FEED, params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["parameter"] == parameter
