"""Revisions, conditional requests and history, whatever path writes."""

import datetime
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from actors.models import Actor
from events.models import Event, EventSnapshot
from ledger.history import revisions
from tests.factories import ActorFactory, SourceFactory

# Each request commits on its own, as in production: revisions count transactions.
pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "/api/v1/events/"


def history_of(model, pk) -> list:
    return revisions(model, pk)


@pytest.fixture
def writer(token_client):
    return token_client("add_event", "change_event", "delete_event", if_match=None)


@pytest.fixture
def created(writer):
    """An event created through the API, with a reason and a request id."""
    source = SourceFactory(text="Russia and Armenia held talks. Russia left early.")
    russia, armenia = ActorFactory(name="Russia"), ActorFactory(name="Armenia")
    response = writer.post(
        EVENTS,
        {
            "type": "CONSULT",
            "title": "Talks",
            "date_end": "2023-11-09",
            "date_precision": "unknown",
            "participants": [{"actor": russia.pk, "role": "initiator"}],
            "evidence": [{"source": source.pk, "quote": "Russia and Armenia held talks"}],
        },
        format="json",
        HTTP_X_CHANGE_REASON="Coded from the morning report",
        HTTP_X_REQUEST_ID="req-create-1",
    )
    assert response.status_code == 201, response.json()
    return {"body": response.json(), "armenia": armenia, "russia": russia, "source": source}


class TestRevisions:
    def test_a_new_record_is_revision_1_with_an_etag(self, api, created):
        url = created["body"]["url"]
        assert created["body"]["revision"] == 1
        response = api.get(url)
        assert response["ETag"] == '"1"'
        assert response.json()["revision"] == 1

    def test_a_change_with_its_child_rows_is_one_revision(self, writer, created):
        url = created["body"]["url"]
        response = writer.patch(
            url,
            {
                "title": "Talks in Yerevan",
                "participants": [{"actor": created["armenia"].pk, "role": "target"}],
            },
            format="json",
            HTTP_IF_MATCH='"1"',
        )
        assert response.status_code == 200, response.json()
        assert response.json()["revision"] == 2
        assert response["ETag"] == '"2"'

    def test_a_change_of_child_rows_alone_is_a_revision(self, writer, created):
        response = writer.patch(
            created["body"]["url"],
            {"participants": [{"actor": created["armenia"].pk, "role": "mediator"}]},
            format="json",
            HTTP_IF_MATCH='"1"',
        )
        assert response.json()["revision"] == 2

    def test_a_write_that_changes_nothing_keeps_the_revision(self, created):
        event = Event.objects.get(pk=created["body"]["id"])
        event.save()
        assert Event.objects.get(pk=event.pk).revision == 1


class TestConditionalRequests:
    def test_if_none_match_with_the_current_etag_gives_304(self, api, created):
        response = api.get(created["body"]["url"], HTTP_IF_NONE_MATCH='"1"')
        assert response.status_code == 304
        assert response.content == b""
        assert response["ETag"] == '"1"'
        assert api.get(created["body"]["url"], HTTP_IF_NONE_MATCH='"0"').status_code == 200

    def test_writes_without_if_match_get_428(self, writer, created):
        url = created["body"]["url"]
        for response in (
            writer.patch(url, {"title": "x"}, format="json"),
            writer.put(url, {"title": "x"}, format="json"),
            writer.delete(url),
        ):
            assert response.status_code == 428
            assert response["Content-Type"] == "application/problem+json"
            assert response.json()["type"] == "urn:event-ledger:problem:precondition-required"
        assert Event.objects.get(pk=created["body"]["id"]).title == "Talks"

    def test_a_stale_if_match_gets_412_with_the_current_revision(self, writer, created):
        url = created["body"]["url"]
        assert (
            writer.patch(url, {"title": "One"}, format="json", HTTP_IF_MATCH='"1"').status_code
            == 200
        )
        response = writer.patch(url, {"title": "Two"}, format="json", HTTP_IF_MATCH='"1"')
        assert response.status_code == 412
        assert response.json()["current_revision"] == 2
        assert response.json()["type"] == "urn:event-ledger:problem:precondition-failed"
        assert writer.delete(url, HTTP_IF_MATCH='"1"').status_code == 412
        assert Event.objects.get(pk=created["body"]["id"]).title == "One"

    def test_a_weak_etag_does_not_satisfy_if_match(self, writer, created):
        # If-Match compares strongly: a weak tag can never match, so it is refused
        # as malformed (400) rather than answered "the record has changed" (412).
        response = writer.patch(
            created["body"]["url"], {"title": "x"}, format="json", HTTP_IF_MATCH='W/"1"'
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["header"] == "If-Match"


class TestReadingHistory:
    def test_history_lists_revisions_newest_first_with_who_via_and_why(self, api, writer, created):
        url = created["body"]["url"]
        writer.patch(
            url,
            {"title": "Talks in Yerevan"},
            format="json",
            HTTP_IF_MATCH='"1"',
            HTTP_X_CHANGE_REASON="Place confirmed",
        )
        response = writer.get(f"{url}history/")  # signed in: account names, request ids
        assert response.status_code == 200
        entries = response.json()["results"]
        assert [(e["revision"], e["action"]) for e in entries] == [(2, "update"), (1, "create")]
        update, create = entries
        assert update["user"].startswith("user")
        assert (update["via"], update["auth"], update["reason"]) == (
            "api",
            "token",
            "Place confirmed",
        )
        assert update["changes"] == {"title": {"before": "Talks", "after": "Talks in Yerevan"}}
        assert update["url"] == f"{url}history/2/"
        assert create["reason"] == "Coded from the morning report"
        # The server's own request id; the one the client chose is kept only as such.
        assert re.fullmatch(r"[0-9a-f]{32}", create["request_id"])
        assert create["client_request_id"] == "req-create-1"
        assert create["changes"]["title"] == {"before": None, "after": "Talks"}

    def test_a_revision_is_readable_as_it_was(self, api, writer, created):
        url = created["body"]["url"]
        writer.patch(
            url,
            {
                "title": "Talks in Yerevan",
                "participants": [{"actor": created["armenia"].pk, "role": "target"}],
            },
            format="json",
            HTTP_IF_MATCH='"1"',
        )
        old = api.get(f"{url}history/1/")
        assert old.status_code == 200
        assert old.json() == {**created["body"], "updated_at": old.json()["updated_at"]}
        assert [p["actor"]["name"] for p in old.json()["participants"]] == ["Russia"]
        new = api.get(f"{url}history/2/").json()
        assert new == api.get(url).json()
        assert api.get(f"{url}history/9/").status_code == 404

    def test_as_of_returns_the_record_as_it_was_then(self, api, writer, created):
        url = created["body"]["url"]
        between = timezone.now()
        writer.patch(url, {"title": "Later title"}, format="json", HTTP_IF_MATCH='"1"')
        assert api.get(url, {"as_of": between.isoformat()}).json()["title"] == "Talks"
        assert api.get(url, {"as_of": timezone.now().isoformat()}).json()["title"] == "Later title"
        before = (between - datetime.timedelta(hours=1)).isoformat()
        assert api.get(url, {"as_of": before}).status_code == 404
        bad = api.get(url, {"as_of": "yesterday"})
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["parameter"] == "as_of"

    def test_a_deleted_record_answers_410_and_keeps_its_history(self, api, writer, created):
        url = created["body"]["url"]
        assert writer.delete(url, HTTP_IF_MATCH='"1"').status_code == 204
        gone = api.get(url)
        assert gone.status_code == 410
        assert gone.json()["history_url"] == f"{url}history/"
        entries = api.get(f"{url}history/").json()["results"]
        assert entries[0]["action"] == "delete"
        assert [e["action"] for e in entries][-1] == "create"
        assert api.get(f"{url}history/1/").json()["title"] == "Talks"
        assert (
            writer.patch(url, {"title": "x"}, format="json", HTTP_IF_MATCH="*").status_code == 410
        )

    def test_history_of_an_unknown_id_is_404(self, api):
        assert api.get(f"{EVENTS}999999/history/").status_code == 404


class TestEveryWritePathLeavesHistory:
    def test_the_seed(self, seeded):
        event = Event.objects.get(mode="invasion")
        (entry,) = history_of(Event, event.pk)
        assert (entry.action, entry.context["via"], entry.context["command"]) == (
            "create",
            "seed",
            "seed",
        )

    def test_bulk_orm_updates(self, created):
        Event.objects.filter(pk=created["body"]["id"]).update(title="Bulk title")
        entries = history_of(Event, created["body"]["id"])
        assert [(e.revision, e.action) for e in entries] == [(1, "create"), (2, "update")]
        assert entries[-1].snapshot.title == "Bulk title"
        assert entries[-1].context == {}  # no request, no command: unattributed

    def test_raw_sql(self, created):
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE events_event SET summary = 'Raw' WHERE id = %s", [created["body"]["id"]]
            )
        entries = history_of(Event, created["body"]["id"])
        assert entries[-1].snapshot.summary == "Raw" and entries[-1].revision == 2

    def test_the_shell(self, created):
        pk = created["body"]["id"]
        call_command(
            "shell",
            command=f"from events.models import Event; "
            f"Event.objects.filter(pk={pk}).update(title='From the shell')",
        )
        entry = history_of(Event, pk)[-1]
        assert (entry.snapshot.title, entry.context["via"]) == ("From the shell", "shell")

    def test_the_admin(self, admin_client, admin_user, seeded):
        russia = Actor.objects.get(slug="russia")
        response = admin_client.post(
            f"/admin/actors/actor/{russia.pk}/change/",
            {
                "slug": "russia",
                "name": "Russian Federation",
                "kind": "country",
                "country": "RUS",
                "sector": "",
                "description": "",
                "aliases-TOTAL_FORMS": "0",
                "aliases-INITIAL_FORMS": "0",
                "identifiers-TOTAL_FORMS": "0",
                "identifiers-INITIAL_FORMS": "0",
                "affiliations-TOTAL_FORMS": "0",
                "affiliations-INITIAL_FORMS": "0",
                "change_reason": "Official name",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        entry = history_of(Actor, russia.pk)[-1]
        assert entry.snapshot.name == "Russian Federation"
        assert (entry.context["via"], entry.context["username"]) == ("admin", admin_user.username)
        assert entry.context["reason"] == "Official name"

    def test_child_rows_are_snapshotted_too(self, created):
        from events.models import EventParticipantSnapshot
        from sources.models import EvidenceSnapshot

        pk = created["body"]["id"]
        assert EventParticipantSnapshot.objects.filter(event_id=pk, pgh_label="insert").count() == 1
        assert EvidenceSnapshot.objects.filter(event_id=pk, pgh_label="insert").count() == 1
        assert EventSnapshot.objects.filter(pgh_obj_id=pk).count() == 1


def test_the_admin_shows_a_records_history(admin_client, created, writer):
    url = created["body"]["url"]
    writer.patch(
        url,
        {"title": "Talks resumed"},
        format="json",
        HTTP_IF_MATCH='"1"',
        HTTP_X_CHANGE_REASON="Second report",
    )
    response = admin_client.get(f"/admin/events/event/{created['body']['id']}/history/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Second report" in page and "Coded from the morning report" in page
    assert "Talks resumed" in page and "api" in page
    start = page.index('<table id="ledger-history"')
    table = page[start : page.index("</table>", start)]
    assert table.count("<tr>") == 1 + 2  # the header and two revisions
