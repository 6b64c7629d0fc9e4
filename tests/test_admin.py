from io import StringIO

import pytest
from django.core.management import call_command

from actors.models import Actor
from events.models import Event
from sources.models import Source

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def seeded():
    call_command("seed", verbosity=0)


def test_admin_requires_login(client):
    response = client.get("/admin/events/event/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_admin_lists_the_seeded_events_with_their_dates(admin_client, seeded):
    response = admin_client.get("/admin/events/event/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Russia summons the Armenian ambassador" in page
    assert "before 9 Nov 2023" in page
    assert "ongoing as of 9 Nov 2023" in page


@pytest.mark.parametrize(
    "url",
    [
        "/admin/actors/actor/",
        "/admin/actors/affiliation/",
        "/admin/sources/source/",
        "/admin/events/place/",
        "/admin/events/statement/",
        "/admin/events/event/add/",
    ],
)
def test_admin_pages_render(admin_client, seeded, url):
    assert admin_client.get(url).status_code == 200


def test_admin_change_page_shows_participants_and_evidence(admin_client, seeded):
    event = Event.objects.get(mode="mediated-talks")
    response = admin_client.get(f"/admin/events/event/{event.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "European Union" in page
    assert "talks mediated by the U.S., EU, and Russia" in page


def test_admin_search_finds_actors_by_alias(admin_client, seeded):
    response = admin_client.get("/admin/actors/actor/", {"q": "Moscow"})
    assert response.status_code == 200
    assert "Russia" in response.content.decode()


def test_admin_refuses_an_event_without_evidence(admin_client):
    response = admin_client.post(
        "/admin/events/event/add/",
        {
            "type": "CONSULT",
            "title": "Talks without a source",
            "date_end": "2023-11-09",
            "date_precision": "unknown",
            "status": "occurred",
            "review_status": "draft",
            "vocabulary_version": "el-plover-1.0",
            "participants-TOTAL_FORMS": "0",
            "participants-INITIAL_FORMS": "0",
            "evidence-TOTAL_FORMS": "0",
            "evidence-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "Please submit at least 1 form" in response.content.decode()
    assert not Event.objects.filter(title="Talks without a source").exists()


def event_form(**fields) -> dict:
    """The admin's add-event form: no participants, one evidence row."""
    return {
        "type": "AID",
        "title": "Russia intervenes",
        "date_end": "2023-11-09",
        "date_precision": "unknown",
        "status": "occurred",
        "review_status": "draft",
        "context": "",
        "participants-TOTAL_FORMS": "0",
        "participants-INITIAL_FORMS": "0",
        "evidence-TOTAL_FORMS": "1",
        "evidence-INITIAL_FORMS": "0",
        **fields,
    }


class TestEvidenceByQuotation:
    def test_the_offsets_are_computed_from_the_pasted_quote(self, admin_client, seeded):
        source = Source.objects.get()
        quote = "Russia intervened on both occasions"
        response = admin_client.post(
            "/admin/events/event/add/",
            event_form(**{"evidence-0-source": source.pk, "evidence-0-quote": quote}),
        )
        assert response.status_code == 302, response.content.decode()[-3000:]
        evidence = Event.objects.get(title="Russia intervenes").evidence.get()
        assert source.text[evidence.start : evidence.end] == quote == evidence.quote

    def test_a_missing_quote_is_refused_with_a_message(self, admin_client, seeded):
        source = Source.objects.get()
        response = admin_client.post(
            "/admin/events/event/add/",
            event_form(**{"evidence-0-source": source.pk, "evidence-0-quote": "Moscow invaded"}),
        )
        assert response.status_code == 200
        assert "The quote “Moscow invaded” is not in the source text." in response.content.decode()
        assert not Event.objects.filter(title="Russia intervenes").exists()

    def test_an_ambiguous_quote_needs_its_occurrence(self, admin_client, seeded):
        source = Source.objects.get()
        form = event_form(**{"evidence-0-source": source.pk, "evidence-0-quote": "Pashinyan"})
        response = admin_client.post("/admin/events/event/add/", form)
        assert "is ambiguous: it occurs 3 times" in response.content.decode()
        assert not Event.objects.filter(title="Russia intervenes").exists()
        form["evidence-0-occurrence"] = "2"
        assert admin_client.post("/admin/events/event/add/", form).status_code == 302
        evidence = Event.objects.get(title="Russia intervenes").evidence.get()
        assert evidence.start == source.text.index("Pashinyan", source.text.index("Pashinyan") + 1)

    def test_the_quote_is_shown_highlighted_in_its_source(self, admin_client, seeded):
        event = Event.objects.get(mode="summon-ambassador")
        page = admin_client.get(f"/admin/events/event/{event.pk}/change/").content.decode()
        assert "<mark>Russia has reacted unfavorably to these developments" in page
        assert "for joint military exercises. <mark>" in page  # the text just before the quote


def test_date_precision_shows_in_the_affiliation_list(admin_client, seeded):
    page = admin_client.get("/admin/actors/affiliation/").content.decode()
    assert "Prime Minister" in page and "—" in page


class TestRoles:
    @pytest.fixture
    def member(self, django_user_model):
        call_command("setup_roles", stdout=StringIO())

        def make(group: str):
            from django.contrib.auth.models import Group

            user = django_user_model.objects.create_user(
                group, password="pw-12345678", is_staff=True
            )
            user.groups.add(Group.objects.get(name=group))
            return user

        return make

    def test_curators_edit_data_but_not_users_or_tokens(self, client, member, seeded):
        client.force_login(member("curator"))
        assert client.get("/admin/events/event/add/").status_code == 200
        assert client.get("/admin/actors/actor/").status_code == 200
        assert client.get("/admin/auth/user/").status_code == 403
        assert client.get("/admin/authtoken/tokenproxy/").status_code == 403

    def test_viewers_only_read(self, client, member, seeded):
        client.force_login(member("viewer"))
        event = Event.objects.first()
        assert client.get("/admin/events/event/").status_code == 200
        page = client.get(f"/admin/events/event/{event.pk}/change/")
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
        assert client.get("/admin/events/event/add/").status_code == 403
        response = client.post(f"/admin/events/event/{event.pk}/change/", {"title": "x"})
        assert response.status_code == 403
        assert Event.objects.get(pk=event.pk).title != "x"


@pytest.mark.django_db(transaction=True)
def test_a_stale_admin_form_is_refused_and_the_other_change_kept(admin_client):
    call_command("seed", verbosity=0)
    actor = Actor.objects.get(slug="russia")
    form = {
        "slug": "russia",
        "name": "Curator's name",
        "kind": "country",
        "country": "RUS",
        "sector": "",
        "description": "",
        "based_on_revision": str(actor.revision),
        "aliases-TOTAL_FORMS": "0",
        "aliases-INITIAL_FORMS": "0",
        "identifiers-TOTAL_FORMS": "0",
        "identifiers-INITIAL_FORMS": "0",
        "affiliations-TOTAL_FORMS": "0",
        "affiliations-INITIAL_FORMS": "0",
    }
    Actor.objects.filter(pk=actor.pk).update(name="Someone else's name")  # meanwhile
    response = admin_client.post(f"/admin/actors/actor/{actor.pk}/change/", form)
    assert response.status_code == 200
    assert "Someone else changed this record after you opened it" in response.content.decode()
    assert Actor.objects.get(pk=actor.pk).name == "Someone else's name"
    form["based_on_revision"] = str(Actor.objects.get(pk=actor.pk).revision)
    assert admin_client.post(f"/admin/actors/actor/{actor.pk}/change/", form).status_code == 302
    assert Actor.objects.get(pk=actor.pk).name == "Curator's name"


def test_setup_roles_is_idempotent():
    from django.contrib.auth.models import Group

    out = StringIO()
    call_command("setup_roles", stdout=out)
    call_command("setup_roles", stdout=out)
    curator, viewer = Group.objects.get(name="curator"), Group.objects.get(name="viewer")
    codenames = set(curator.permissions.values_list("codename", flat=True))
    assert {"add_event", "change_evidence", "delete_actor", "view_eventsnapshot"} <= codenames
    assert not codenames & {"add_user", "change_user", "add_token", "add_eventsnapshot"}
    assert set(viewer.permissions.values_list("codename", flat=True)) == {
        c for c in codenames if c.startswith("view_")
    }
    assert Group.objects.filter(name__in=["curator", "viewer"]).count() == 2


class TestSourceText:
    def form(self, source, **changes) -> dict:
        return {
            "title": source.title,
            "publisher": source.publisher,
            "url": source.url,
            "published_on": "2023-11-09",
            "language": "en",
            "text": source.text,
            **changes,
        }

    def test_a_cited_text_cannot_change_in_the_admin(self, admin_client, seeded):
        source = Source.objects.get()
        response = admin_client.post(
            f"/admin/sources/source/{source.pk}/change/", self.form(source, text="Rewritten.")
        )
        assert response.status_code == 200
        # The same rule, and words, as the API's (Source.clean()).
        assert "The text of this source cannot change: evidence spans point into it" in (
            response.content.decode()
        )
        assert Source.objects.get(pk=source.pk).text == source.text

    def test_the_same_text_is_not_stored_twice(self, admin_client, seeded):
        source = Source.objects.get()
        response = admin_client.post("/admin/sources/source/add/", self.form(source))
        assert response.status_code == 200
        assert f"This text is already stored as source {source.pk}." in response.content.decode()
        assert Source.objects.count() == 1


def test_the_sources_old_admin_urls_lead_to_their_new_home(admin_client, seeded):
    source = Source.objects.get()
    response = admin_client.get(f"/admin/events/source/{source.pk}/change/?_changelist_filters=x")
    assert response.status_code == 302
    assert (
        response["Location"] == f"/admin/sources/source/{source.pk}/change/?_changelist_filters=x"
    )
    assert admin_client.get(response["Location"]).status_code == 200
    assert admin_client.get("/admin/events/event/").status_code == 200  # events stay
