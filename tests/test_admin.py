import pytest
from django.core.management import call_command

from events.models import Event

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
        "/admin/events/source/",
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
