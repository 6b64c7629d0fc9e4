"""Merging duplicates in the admin: the "Merge into…" action on the actor and
place lists, its confirmation page, merged records in the admin, and Unmerge."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.management import call_command

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation
from actors.services import actor_create, actor_merge_preview, affiliation_create
from events.models import Event, EventParticipant, Place, Statement, StatementActor
from events.services import event_create, place_create, statement_create
from sources.models import Source
from sources.services import span_for_quote

pytestmark = pytest.mark.django_db(transaction=True)  # a revision per request, as in use

ACTORS = "/admin/actors/actor/"
PLACES = "/admin/events/place/"


@pytest.fixture
def member(django_user_model):
    call_command("setup_roles", stdout=StringIO())

    def make(group: str):
        user = django_user_model.objects.create_user(group, password="pw-12345678", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        return user

    return make


@pytest.fixture
def curator(client, member):
    client.force_login(member("curator"))
    return client


@pytest.fixture
def duplicate(seeded):
    """`usa`, a second United States: beside the seed's united-states as
    mediator of one event (a participation the target has the like of), alone
    in another, the speaker of a statement addressed to Armenia, with the
    aliases "America" and "U.S." (which the target has) and a cameo id."""
    source = Source.objects.get()
    into = Actor.objects.get(slug="united-states")
    usa = actor_create(
        slug="usa",
        name="USA",
        kind="country",
        country="USA",
        aliases=["America", "U.S."],
        identifiers={"cameo": "USA"},
    )
    shared = Event.objects.filter(participants__actor=into, participants__role="mediator").first()
    EventParticipant.objects.create(event=shared, actor=usa, role="mediator")
    span = span_for_quote(source=source, quote="Armenia is facing")
    alone = event_create(
        type="CONSULT",
        title="USA alone",
        participants=[(usa, "initiator")],
        evidence=[span],
        date_end=source.published_on,
        date_precision="unknown",
    )
    said = statement_create(
        speaker=usa,
        kind="claim",
        content="Said by USA.",
        evidence=[span],
        date_end=source.published_on,
        date_precision="unknown",
        targets=[Actor.objects.get(slug="armenia")],
    )
    return {"usa": usa, "into": into, "shared": shared, "alone": alone, "said": said}


def action(client, url, records, **fields):
    """POST the "Merge into…" action for `records`, as the list and then the
    confirmation page post it."""
    return client.post(
        url,
        {"action": "merge_into", "_selected_action": [r.pk for r in records], **fields},
    )


def confirm(client, url, records, into, reason="the same state"):
    """Preview, then press Merge, as a curator does."""
    preview = action(client, url, records, into=into, reason=reason, _preview="1")
    assert preview.status_code == 200
    return action(
        client,
        url,
        records,
        into=into,
        reason=reason,
        previewed=preview.context["form"]["previewed"].value(),
        _merge="1",
    )


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def state() -> dict:
    return {
        "participants": sorted(EventParticipant.objects.values_list("event", "actor", "role")),
        "speakers": sorted(Statement.objects.values_list("pk", "speaker")),
        "links": sorted(StatementActor.objects.values_list("statement", "actor", "role")),
        "affiliations": sorted(Affiliation.objects.values_list("pk", "member", "organization")),
        "aliases": sorted(ActorAlias.objects.values_list("actor", "name")),
        "identifiers": sorted(ActorIdentifier.objects.values_list("actor", "scheme", "value")),
        "merged": sorted(Actor.objects.values_list("pk", "merged_into")),
    }


class TestPermissions:
    def test_curators_see_the_action_and_viewers_do_not(self, client, member, seeded):
        client.force_login(member("curator"))
        for url in (ACTORS, PLACES):
            assert 'value="merge_into"' in client.get(url).content.decode()
        client.force_login(member("viewer"))
        for url in (ACTORS, PLACES):
            page = client.get(url)
            assert page.status_code == 200 and 'value="merge_into"' not in page.content.decode()

    def test_a_viewer_posting_the_action_merges_nothing(self, client, member, duplicate):
        client.force_login(member("viewer"))
        before = state()
        usa, into = duplicate["usa"], duplicate["into"]
        response = confirm_unchecked(client, usa, into)
        assert response.status_code in (200, 302, 403)
        assert state() == before

    def test_a_viewer_cannot_unmerge(self, client, member, curator, duplicate):
        usa, into = duplicate["usa"], duplicate["into"]
        confirm(curator, ACTORS, [usa], into.pk)
        client.force_login(member("viewer"))
        page = client.get(f"{ACTORS}{usa.pk}/change/").content.decode()
        assert "Unmerge" not in page
        response = client.post(f"{ACTORS}{usa.pk}/unmerge/", {"reason": "no"})
        assert response.status_code == 403
        assert Actor.objects.get(pk=usa.pk).merged_into_id == into.pk


def confirm_unchecked(client, usa, into):
    return action(client, ACTORS, [usa], into=into.pk, reason="x", previewed=into.pk, _merge="1")


class TestConfirmationPage:
    def test_the_action_asks_for_the_target_and_a_reason_first(self, curator, duplicate):
        usa = duplicate["usa"]
        page = action(curator, ACTORS, [usa])
        assert page.status_code == 200
        html = page.content.decode()
        assert 'name="into"' in html and 'name="reason"' in html and 'name="_merge"' not in html
        assert Actor.objects.get(pk=usa.pk).merged_into_id is None
        # No reason: asked again, nothing merged.
        page = action(curator, ACTORS, [usa], into=duplicate["into"].pk, _preview="1")
        assert page.status_code == 200 and page.context["form"].errors["reason"]
        assert 'name="_merge"' not in page.content.decode()

    def test_the_preview_counts_what_the_merge_then_moves(self, curator, duplicate):
        usa, into = duplicate["usa"], duplicate["into"]
        page = action(curator, ACTORS, [usa], into="united-states", reason="x", _preview="1")
        assert page.status_code == 200
        [shown] = page.context["previews"]
        counts = {r["name"]: (r["moved"], r["dropped"]) for r in shown["relations"]}
        assert counts == {
            "participations": (1, 1),
            "statements": (1, 0),
            "aliases": (1, 1),
            "identifiers": (1, 0),
        }
        html = page.content.decode()
        assert "<td>participations</td><td>1</td><td>1</td>" in html
        assert "Its name “USA” becomes an alias of United States." in html
        assert 'name="_merge"' in html
        preview = actor_merge_preview(actor=usa, into=into)
        assert Actor.objects.get(pk=usa.pk).merged_into_id is None  # nothing done yet
        response = confirm(curator, ACTORS, [usa], "united-states")
        assert response.status_code == 302
        done = Actor.objects.get(pk=usa.pk).merge
        assert {
            key: {"moved": entry["moved"], "dropped": [row["id"] for row in entry["dropped"]]}
            for key, entry in done["moved"].items()
        } == preview["moved"]

    def test_a_place_preview_counts_its_events(self, curator, seeded):
        into = Place.objects.exclude(events=None).first()
        dup = place_create(slug="dup-place", name=into.name + " (dup)", kind=into.kind)
        event = Event.objects.filter(place=into).first()
        Event.objects.filter(pk=event.pk).update(place=dup)
        page = action(curator, PLACES, [dup], into=into.slug, reason="same city", _preview="1")
        [shown] = page.context["previews"]
        assert shown["relations"] == [{"name": "events", "moved": 1, "dropped": 0}]
        response = confirm(curator, PLACES, [dup], into.slug)
        assert response.status_code == 302
        assert Event.objects.get(pk=event.pk).place_id == into.pk
        assert Place.objects.get(pk=dup.pk).merged_into_id == into.pk
        assert any("merged into" in m for m in texts(response))

    def test_changing_the_target_after_the_preview_previews_again(self, curator, duplicate):
        usa, into = duplicate["usa"], duplicate["into"]
        armenia = Actor.objects.get(slug="armenia")
        page = action(
            curator, ACTORS, [usa], into=into.pk, reason="x", previewed=armenia.pk, _merge="1"
        )
        assert page.status_code == 200 and page.context["previews"]
        assert Actor.objects.get(pk=usa.pk).merged_into_id is None


class TestConfirming:
    def test_confirming_merges_and_records_the_reason_via_the_admin(self, curator, duplicate, api):
        usa, into = duplicate["usa"], duplicate["into"]
        response = confirm(curator, ACTORS, [usa], into.pk, reason="USA is the United States")
        assert response.status_code == 302
        [message] = texts(response)
        assert message.startswith("USA (id") and "1 participations (1 dropped" in message
        usa.refresh_from_db()
        assert usa.merged_into_id == into.pk
        assert list(duplicate["alone"].participants.values_list("actor", flat=True)) == [into.pk]
        assert Statement.objects.get(pk=duplicate["said"].pk).speaker_id == into.pk
        assert set(into.aliases.values_list("name", flat=True)) >= {"America", "USA", "U.S."}
        for record in (usa, into):
            newest = api.get(f"/api/v1/actors/{record.pk}/history/").json()["results"][0]
            assert newest["via"] == "admin"
            assert newest["reason"] == "USA is the United States"
            assert newest["merge"] == {"merged": usa.pk, "into": into.pk, "undone": False}

    def test_each_record_merged_at_once_has_its_own_history_context(self, curator, duplicate, api):
        usa, into = duplicate["usa"], duplicate["into"]
        other = actor_create(slug="usa-2", name="USA 2", kind="country")
        response = confirm(curator, ACTORS, [usa, other], into.pk, reason="all one")
        assert response.status_code == 302
        assert set(Actor.objects.filter(merged_into=into).values_list("pk", flat=True)) == {
            usa.pk,
            other.pk,
        }
        for record in (usa, other):
            newest = api.get(f"/api/v1/actors/{record.pk}/history/").json()["results"][0]
            assert newest["merge"]["merged"] == record.pk, newest
            assert newest["via"] == "admin" and newest["reason"] == "all one"

    def test_the_list_marks_merged_records_and_filters_them(self, curator, duplicate):
        usa, into = duplicate["usa"], duplicate["into"]
        confirm(curator, ACTORS, [usa], into.pk)
        merged = curator.get(ACTORS, {"merged": "yes"})
        assert [a.pk for a in merged.context["cl"].result_list] == [usa.pk]
        assert f'/admin/actors/actor/{into.pk}/change/">{into.pk}</a>' in merged.content.decode()
        kept = curator.get(ACTORS, {"merged": "no"}).context["cl"].result_list
        assert usa.pk not in {a.pk for a in kept} and into.pk in {a.pk for a in kept}

    def test_the_autocomplete_offers_no_merged_record(self, curator, duplicate):
        usa, into = duplicate["usa"], duplicate["into"]
        confirm(curator, ACTORS, [usa], into.pk)
        found = curator.get(
            "/admin/autocomplete/",
            {
                "term": "US",
                "app_label": "actors",
                "model_name": "actor",
                "field_name": "merged_into",
            },
        ).json()["results"]
        ids = {int(r["id"]) for r in found}
        assert into.pk in ids and usa.pk not in ids


class TestRefused:
    def test_an_identifier_conflict_is_shown_and_nothing_changes(self, curator, duplicate):
        into = duplicate["into"]
        armenia = Actor.objects.get(slug="armenia")
        page = action(curator, ACTORS, [armenia], into=into.pk, reason="x", _preview="1")
        [shown] = page.context["previews"]
        assert "armenia" in shown["refused"] and "Refused:" in page.content.decode()
        before = state()
        response = confirm(curator, ACTORS, [armenia], into.pk)
        assert response.status_code == 302
        [message] = texts(response)
        assert "was not merged" in message and "identifier" in message
        assert state() == before

    def test_itself_and_into_a_merged_record_are_messages(self, curator, duplicate):
        usa, into = duplicate["usa"], duplicate["into"]
        before = state()
        response = confirm(curator, ACTORS, [usa], usa.pk)
        assert response.status_code == 302
        assert "cannot be merged into itself" in texts(response)[0]
        assert state() == before
        confirm(curator, ACTORS, [usa], into.pk)
        other = actor_create(slug="usa-2", name="USA 2", kind="country")
        before = state()
        response = confirm(curator, ACTORS, [other], usa.pk)
        assert response.status_code == 302
        assert "is itself merged into" in texts(response)[0]
        again = confirm(curator, ACTORS, [usa], other.pk)
        assert "already merged" in texts(again)[0]
        assert state() == before

    def test_one_refused_record_leaves_the_others_merged(self, curator, duplicate):
        usa, into = duplicate["usa"], duplicate["into"]
        armenia = Actor.objects.get(slug="armenia")
        response = confirm(curator, ACTORS, [usa, armenia], into.pk)
        assert response.status_code == 302
        assert Actor.objects.get(pk=usa.pk).merged_into_id == into.pk
        assert Actor.objects.get(pk=armenia.pk).merged_into_id is None
        assert len(texts(response)) == 2

    def test_actors_affiliated_with_each_other_are_not_merged(self, curator, duplicate):
        usa, into = duplicate["usa"], duplicate["into"]
        span = span_for_quote(source=Source.objects.get(), quote="Armenia is facing")
        affiliation_create(member=usa, organization=into, role="envoy", evidence=[span])
        before = state()
        response = confirm(curator, ACTORS, [usa], into.pk)
        assert response.status_code == 302
        assert "affiliated with each other" in texts(response)[0]
        assert state() == before

    def test_an_unknown_target_is_a_form_error(self, curator, duplicate):
        page = action(curator, ACTORS, [duplicate["usa"]], into="no-such", reason="x", _preview="1")
        assert page.status_code == 200 and page.context["form"].errors["into"]


class TestMergedRecordPage:
    def test_it_shows_the_target_read_only_and_unmerge_restores(self, curator, duplicate, api):
        usa, into = duplicate["usa"], duplicate["into"]
        before = state()
        confirm(curator, ACTORS, [usa], into.pk)
        page = curator.get(f"{ACTORS}{usa.pk}/change/").content.decode()
        assert (
            f'<a href="/admin/actors/actor/{into.pk}/change/">United States (id {into.pk})</a>'
            in page
        )
        assert f'href="/admin/actors/actor/{usa.pk}/unmerge/"' in page
        assert 'name="_save"' not in page  # changed through its target
        assert curator.get(f"{ACTORS}{usa.pk}/unmerge/").status_code == 200
        no_reason = curator.post(f"{ACTORS}{usa.pk}/unmerge/", {"reason": ""})
        assert no_reason.status_code == 200 and no_reason.context["form"].errors
        assert Actor.objects.get(pk=usa.pk).merged_into_id == into.pk
        response = curator.post(f"{ACTORS}{usa.pk}/unmerge/", {"reason": "two after all"})
        assert response.status_code == 302
        assert "no longer merged" in texts(response)[0]
        assert "1 participations (1 made again)" in texts(response)[0]
        assert state() == before
        newest = api.get(f"/api/v1/actors/{usa.pk}/history/").json()["results"][0]
        assert newest["via"] == "admin" and newest["reason"] == "two after all"
        assert newest["merge"] == {"merged": usa.pk, "into": into.pk, "undone": True}
        again = curator.post(f"{ACTORS}{usa.pk}/unmerge/", {"reason": "again"})
        assert again.status_code == 302 and "is not merged" in texts(again)[-1]

    def test_a_record_not_merged_offers_no_unmerge(self, curator, duplicate):
        page = curator.get(f"{ACTORS}{duplicate['into'].pk}/change/").content.decode()
        assert "unmerge" not in page.lower() and 'name="_save"' in page


def test_names_are_escaped_everywhere(curator, seeded):
    into = Actor.objects.get(slug="united-states")
    evil = actor_create(slug="evil", name="<script>alert(1)</script>", kind="group")
    pages = [
        action(curator, ACTORS, [evil], into=into.pk, reason="<b>why</b>", _preview="1"),
    ]
    merged = confirm(curator, ACTORS, [evil], into.pk, reason="<b>why</b>")
    pages.append(curator.get(merged["Location"]))  # the list, with the message
    pages.append(curator.get(f"{ACTORS}{evil.pk}/change/"))
    pages.append(curator.get(f"{ACTORS}{evil.pk}/unmerge/"))
    for page in pages:
        html = page.content.decode()
        assert "<script>alert(1)" not in html and "<b>why" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_affiliation_both_actors_hold_refuses_the_merge(curator, seeded):
    """The affiliations' unique key counts two empty starts as equal, so the
    merged actor's copy could only be dropped; but an affiliation is a record
    of its own, with evidence and history: the merge is refused (shown in the
    preview, a message on confirming) and nothing changes."""
    span = span_for_quote(source=Source.objects.get(), quote="Armenia is facing")
    into = actor_create(slug="p-one", name="P One", kind="person")
    dup = actor_create(slug="p-two", name="P Two", kind="person")
    armenia = Actor.objects.get(slug="armenia")
    affiliation_create(member=dup, organization=armenia, role="envoy", evidence=[span])
    affiliation_create(member=into, organization=armenia, role="envoy", evidence=[span])
    before = state()
    page = action(curator, ACTORS, [dup], into=into.pk, reason="x", _preview="1")
    [shown] = page.context["previews"]
    assert "does not delete it" in shown["refused"]
    response = confirm(curator, ACTORS, [dup], into.pk)
    assert any("does not delete it" in text for text in texts(response)), texts(response)
    assert state() == before
    assert Actor.objects.get(pk=dup.pk).merged_into_id is None
