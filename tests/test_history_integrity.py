"""History holds at every revision: child-list changes, no-op writes, deletes,
one representation per revision, and a feed that never stalls or skips.

Each test is a case found by a randomized walk over the API (the stateful test
in tests/test_stateful.py looks for the next ones).
"""

import threading

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction

from tests.factories import ActorFactory, EventFactory, SourceFactory

pytestmark = pytest.mark.django_db(transaction=True)

FEED = "/api/v1/changes/"


@pytest.fixture
def alice(token_client):
    return _writer(token_client)


@pytest.fixture
def bob(token_client):
    return _writer(token_client)


def _writer(token_client):
    return token_client(
        *(
            f"{verb}_{model}"
            for verb in ("add", "change", "delete")
            for model in ("actor", "event", "statement", "affiliation", "place", "source")
        ),
        if_match=None,
    )


def make_event(**fields):
    """An event with its evidence, committed together (the evidence check is
    deferred to the commit)."""
    with transaction.atomic():
        return EventFactory(**fields)


def history(api, url: str) -> list[dict]:
    """The record's history, oldest first."""
    response = api.get(f"{url}history/")
    assert response.status_code == 200, response.content
    return list(reversed(response.json()["results"]))


def feed(api, resource: str, pk: int) -> list[tuple[str, int]]:
    changes, url = [], f"{FEED}?resource={resource}&page_size=1000"
    while url:
        body = api.get(url).json()
        changes += body["results"]
        url = body["next"]
    return [(c["action"], c["revision"]) for c in changes if c["id"] == pk]


def patch(client, url, body, revision, reason=""):
    headers = {"HTTP_IF_MATCH": f'"{revision}"'}
    if reason:
        headers["HTTP_X_CHANGE_REASON"] = reason
    return client.patch(url, body, format="json", **headers)


@pytest.fixture
def actor(alice):
    response = alice.post(
        "/api/v1/actors/",
        {"slug": "arm", "name": "Armenia", "kind": "country", "aliases": ["A", "B", "C"]},
        format="json",
        HTTP_X_CHANGE_REASON="first",
    )
    assert response.status_code == 201, response.json()
    return response.json()


class TestChildListChanges:
    def test_a_patch_of_aliases_alone_is_a_new_revision_and_keeps_revision_1(self, api, bob, actor):
        url = actor["url"]
        before = history(api, url)
        response = patch(bob, url, {"aliases": ["X", "Y"]}, 1, reason="second")
        assert response.status_code == 200, response.json()
        assert response["ETag"] == '"2"'

        entries = history(api, url)
        assert [e["revision"] for e in entries] == [1, 2]
        assert entries[0] == before[0]  # revision 1 is as it was: user, reason, time
        assert entries[0]["reason"] == "first"
        assert entries[1]["reason"] == "second"
        assert entries[1]["user"] != entries[0]["user"]
        assert entries[1]["changes"] == {
            "aliases": {"before": ["A", "B", "C"], "after": ["X", "Y"]}
        }
        assert api.get(f"{url}history/1/").json()["aliases"] == ["A", "B", "C"]
        assert api.get(f"{url}history/2/").json()["aliases"] == ["X", "Y"]
        as_of = api.get(url, {"as_of": entries[0]["time"]}).json()
        assert as_of["aliases"] == ["A", "B", "C"] and as_of["revision"] == 1
        assert feed(api, "actors", actor["id"]) == [("create", 1), ("update", 2)]

    def test_a_patch_of_participants_alone_keeps_the_old_participants_in_revision_1(
        self, api, alice, bob
    ):
        source = SourceFactory(text="Russia and Armenia held talks.")
        russia, armenia = ActorFactory(), ActorFactory()
        created = alice.post(
            "/api/v1/events/",
            {
                "type": "CONSULT",
                "title": "Talks",
                "date_precision": "unknown",
                "date_end": "2023-11-09",
                "participants": [{"actor": russia.pk, "role": "initiator"}],
                "evidence": [{"source": source.pk, "quote": "Russia and Armenia"}],
            },
            format="json",
        ).json()
        url = created["url"]
        response = patch(
            bob,
            url,
            {
                "participants": [{"actor": armenia.pk, "role": "target"}],
                "evidence": [{"source": source.pk, "quote": "held talks"}],
            },
            1,
        )
        assert response.status_code == 200 and response.json()["revision"] == 2
        first = api.get(f"{url}history/1/").json()
        assert [p["actor"]["id"] for p in first["participants"]] == [russia.pk]
        assert [e["quote"] for e in first["evidence"]] == ["Russia and Armenia"]
        entries = history(api, url)
        assert set(entries[1]["changes"]) == {"participants", "evidence"}
        assert entries[0]["time"] == created_time(api, url)

    def test_a_patch_of_identifiers_alone_is_a_revision_with_changes(self, api, bob, actor):
        response = patch(
            bob, actor["url"], {"identifiers": [{"scheme": "wikidata", "value": "Q399"}]}, 1
        )
        assert response.status_code == 200 and response.json()["revision"] == 2
        entries = history(api, actor["url"])
        assert list(entries[1]["changes"]) == ["identifiers"]
        assert api.get(f"{actor['url']}history/1/").json()["identifiers"] == []


def created_time(api, url) -> str:
    return history(api, url)[0]["time"]


class TestWritesThatChangeNothing:
    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"name": "Armenia"},
            {"aliases": ["C", "B", "A"]},  # the same names: aliases are shown by name
            {"name": "Armenia", "aliases": ["A", "B", "C"], "identifiers": []},
        ],
    )
    def test_a_no_op_patch_changes_nothing_anywhere(self, api, bob, actor, body):
        url = actor["url"]
        before_history = history(api, url)
        before_feed = feed(api, "actors", actor["id"])
        before_record = api.get(url).json()

        response = patch(bob, url, body, 1, reason="nothing")
        assert response.status_code == 200, response.json()
        assert response["ETag"] == '"1"'
        assert response.json() == before_record

        assert history(api, url) == before_history
        assert feed(api, "actors", actor["id"]) == before_feed
        assert api.get(url).json() == before_record  # updated_at included

    def test_a_no_op_put_of_an_event_changes_nothing(self, api, alice, bob):
        event = make_event()
        url = f"/api/v1/events/{event.pk}/"
        record = api.get(url).json()
        body = {
            "type": record["type"],
            "title": record["title"],
            "summary": record["summary"],
            "date_start": record["date_start"],
            "date_end": record["date_end"],
            "date_precision": record["date_precision"],
            "status": record["status"],
            "mode": record["mode"],
            "context": record["context"],
            "place": None,
            "place_text": record["place_text"],
            "review_status": record["review_status"],
            "participants": [
                {"actor": p["actor"]["id"], "role": p["role"]} for p in record["participants"]
            ],
            "evidence": [
                {"source": e["source"], "start": e["start"], "end": e["end"]}
                for e in record["evidence"]
            ],
        }
        before = history(api, url)
        response = bob.put(url, body, format="json", HTTP_IF_MATCH=f'"{record["revision"]}"')
        assert response.status_code == 200, response.json()
        assert response.json()["revision"] == record["revision"]
        assert history(api, url) == before
        assert api.get(url).json() == record


class TestDeletes:
    def test_a_delete_is_one_revision_numbered_alike_in_history_and_feed(self, api, bob, actor):
        url = actor["url"]
        response = bob.delete(url, HTTP_IF_MATCH='"1"', HTTP_X_CHANGE_REASON="duplicate")
        assert response.status_code == 204
        entries = history(api, url)
        assert [(e["action"], e["revision"]) for e in entries] == [
            ("create", 1),
            ("delete", 2),
        ]
        assert entries[1]["reason"] == "duplicate"
        assert entries[0]["reason"] == "first"
        assert feed(api, "actors", actor["id"]) == [("create", 1), ("delete", 2)]

    def test_deleting_a_place_without_child_rows_numbers_the_delete_alike(self, api, alice):
        place = alice.post(
            "/api/v1/places/", {"slug": "yerevan", "name": "Yerevan", "kind": "city"}, format="json"
        ).json()
        patch(alice, place["url"], {"name": "Erevan"}, 1)
        assert alice.delete(place["url"], HTTP_IF_MATCH='"2"').status_code == 204
        entries = history(api, place["url"])
        assert [(e["action"], e["revision"]) for e in entries] == [
            ("create", 1),
            ("update", 2),
            ("delete", 3),
        ]
        assert feed(api, "places", place["id"]) == [("create", 1), ("update", 2), ("delete", 3)]

    def test_deleting_an_event_with_child_rows_adds_no_phantom_update(self, api, alice):
        event = make_event()
        url = f"/api/v1/events/{event.pk}/"
        assert alice.delete(url, HTTP_IF_MATCH='"1"').status_code == 204
        assert feed(api, "events", event.pk) == [("create", 1), ("delete", 2)]
        assert [(e["action"], e["revision"]) for e in history(api, url)] == [
            ("create", 1),
            ("delete", 2),
        ]
        assert api.get(url).status_code == 410
        assert api.get(f"{url}history/1/").json()["id"] == event.pk


class TestEventsThatStatementsAreAbout:
    def test_deleting_an_event_a_statement_is_about_is_refused_and_changes_nothing(
        self, api, alice
    ):
        source = SourceFactory(text="Armenia said the talks failed.")
        speaker = ActorFactory()
        event = make_event()
        statement = alice.post(
            "/api/v1/statements/",
            {
                "speaker": speaker.pk,
                "kind": "claim",
                "content": "The talks failed.",
                "date_precision": "unknown",
                "date_end": "2023-11-09",
                "about_events": [event.pk],
                "evidence": [{"source": source.pk, "quote": "the talks failed"}],
            },
            format="json",
        ).json()
        response = alice.delete(f"/api/v1/events/{event.pk}/", HTTP_IF_MATCH="*")
        assert response.status_code == 409
        assert response["Content-Type"] == "application/problem+json"
        assert "statements (in their about_events)" in response.json()["detail"]
        assert api.get(statement["url"]).json() == statement
        assert [e["revision"] for e in history(api, statement["url"])] == [1]
        assert api.get(f"/api/v1/events/{event.pk}/").status_code == 200


class TestOneRepresentationPerRevision:
    def test_statement_write_response_get_and_history_are_the_same_json(self, api, alice):
        source = SourceFactory(text="Armenia spoke of both wars.")
        speaker = ActorFactory()
        # The later event by id happened first: an order by date and one by id differ.
        late = make_event(date_start=None, date_end="2023-09-19", date_precision="day")
        early = make_event(date_start=None, date_end="1991-09-21", date_precision="day")
        created = alice.post(
            "/api/v1/statements/",
            {
                "speaker": speaker.pk,
                "kind": "claim",
                "content": "Both wars.",
                "date_precision": "unknown",
                "date_end": "2023-11-09",
                "about_events": [late.pk],
                "evidence": [{"source": source.pk, "quote": "both wars"}],
            },
            format="json",
        )
        url = created.json()["url"]
        response = patch(alice, url, {"about_events": [early.pk, late.pk]}, 1)
        assert response.status_code == 200
        got = api.get(url)
        assert response.json() == got.json()
        assert response["ETag"] == got["ETag"] == '"2"'
        assert api.get(f"{url}history/2/").json() == got.json()
        assert api.get(f"{url}history/1/").json() == created.json()


class TestFeedUnderConcurrentTransactions:
    """The feed is ordered by commit: a running transaction, however long, in
    this database or another, holds back no later commit; and a change that
    commits late is listed after the cursor a reader already has."""

    def _other_connection(self, dbname=None):
        db = settings.DATABASES["default"]
        return psycopg.connect(
            host=db["HOST"],
            port=db["PORT"] or None,
            user=db["USER"],
            dbname=dbname or connection.settings_dict["NAME"],
        )

    def test_a_long_transaction_in_another_database_holds_nothing_back(self, api, alice):
        with self._other_connection("postgres") as other:
            other.execute("SELECT txid_current()")  # a transaction with an id, left open
            actor = alice.post(
                "/api/v1/actors/", {"slug": "x1", "name": "X", "kind": "group"}, format="json"
            ).json()
            assert feed(api, "actors", actor["id"]) == [("create", 1)]
            other.rollback()

    def test_a_change_that_commits_late_is_listed_after_the_cursor_already_read(self, api, alice):
        actor = ActorFactory()
        start = api.get(FEED, {"page_size": 1000}).json()
        while start["next"]:
            start = api.get(start["next"]).json()
        with self._other_connection() as slow:
            # A writer that starts first and commits last.
            slow.execute("UPDATE actors_actor SET name = 'Renamed' WHERE id = %s", [actor.pk])
            quick = alice.post(
                "/api/v1/actors/", {"slug": "q", "name": "Quick", "kind": "group"}, format="json"
            ).json()
            first = api.get(FEED, {"after": start["cursor"]}).json()
            assert [(c["id"], c["action"]) for c in first["results"]] == [(quick["id"], "create")]
            slow.commit()
        second = api.get(FEED, {"after": first["cursor"]}).json()
        assert [(c["id"], c["action"], c["revision"]) for c in second["results"]] == [
            (actor.pk, "update", 2)
        ]

    def test_writers_waiting_on_each_other_commit_in_feed_order(self, api, alice):
        """Many short writers at once: every change is listed exactly once."""
        errors = []

        def write(n):
            try:
                from rest_framework.test import APIClient

                client = APIClient()
                client.credentials(HTTP_AUTHORIZATION=alice._credentials["HTTP_AUTHORIZATION"])
                response = client.post(
                    "/api/v1/actors/",
                    {"slug": f"c{n}", "name": "C", "kind": "group"},
                    format="json",
                )
                assert response.status_code == 201, response.content
            except Exception as exc:
                errors.append(exc)
            finally:
                from django.db import connection as thread_connection

                thread_connection.close()

        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        changes, url = [], f"{FEED}?resource=actors&page_size=3"
        while url:
            body = api.get(url).json()
            changes += body["results"]
            url = body["next"]
        created = [c["id"] for c in changes if c["action"] == "create"]
        assert len(created) == len(set(created)) == 8


def test_an_impossible_as_of_says_it_is_impossible(api):
    actor = ActorFactory()
    response = api.get(f"/api/v1/actors/{actor.pk}/", {"as_of": "2023-02-30T00:00:00Z"})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["parameter"] == "as_of"
    assert "February 2023 has no day 30" in error["detail"]
