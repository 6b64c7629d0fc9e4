import hashlib

import pytest

from events.models import Place
from sources.models import Source
from tests.factories import EventFactory, PlaceFactory, SourceFactory

pytestmark = pytest.mark.django_db

SOURCES = "/api/v1/sources/"
PLACES = "/api/v1/places/"


def test_create_a_source_computes_its_digest(token_client):
    text = "Armenia and Azerbaijan held talks."
    response = token_client("add_source").post(
        SOURCES,
        {
            "title": "Talks",
            "document_url": "https://news.example.org/talks",
            "published_on": "2024-03-15",
            "text": text,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert body["document_url"] == "https://news.example.org/talks"
    assert Source.objects.get(pk=body["id"]).text == text


def test_the_same_text_twice_is_refused(token_client):
    stored = SourceFactory(text="Same.")
    response = token_client("add_source").post(SOURCES, {"text": "Same."}, format="json")
    assert response.status_code == 400
    # Named on the field the client sent, with the stored source (as in the admin).
    [error] = response.json()["errors"]
    assert (error["pointer"], error["detail"]) == (
        "/text",
        f"This text is already stored as source {stored.pk}.",
    )
    assert Source.objects.filter(text="Same.").count() == 1


def test_changing_text_under_evidence_is_refused_with_409(token_client):
    source = EventFactory().evidence.get().source
    response = token_client("change_source").patch(
        f"{SOURCES}{source.pk}/", {"text": "Rewritten."}, format="json"
    )
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert "evidence spans point into it" in response.json()["detail"]
    assert Source.objects.get(pk=source.pk).text != "Rewritten."


def test_metadata_of_a_cited_source_can_change(token_client):
    source = EventFactory().evidence.get().source
    response = token_client("change_source").patch(
        f"{SOURCES}{source.pk}/", {"title": "Better title"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["title"] == "Better title"


def test_text_of_an_uncited_source_can_change(token_client):
    source = SourceFactory()
    response = token_client("change_source").patch(
        f"{SOURCES}{source.pk}/", {"text": "Fixed."}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["sha256"] == hashlib.sha256(b"Fixed.").hexdigest()


def test_sources_cannot_be_deleted(token_client):
    source = SourceFactory()
    response = token_client("delete_source").delete(f"{SOURCES}{source.pk}/")
    assert response.status_code == 405
    assert response.json()["title"] == "Method Not Allowed"
    assert response["Allow"] == "GET, PUT, PATCH, HEAD, OPTIONS"


def test_source_filters(api):
    english = SourceFactory(language="en")
    SourceFactory(language="hy")
    assert [r["id"] for r in api.get(SOURCES, {"language": "en"}).json()["results"]] == [english.pk]
    by_digest = api.get(SOURCES, {"sha256": english.sha256}).json()["results"]
    assert [r["id"] for r in by_digest] == [english.pk]


def test_source_list_runs_one_query(api, django_assert_num_queries):
    SourceFactory.create_batch(3)
    with django_assert_num_queries(1):  # the page of sources
        api.get(SOURCES)


def test_place_crud(token_client, api):
    client = token_client("add_place", "change_place", "delete_place")
    response = client.post(
        PLACES,
        {
            "slug": "yerevan",
            "name": "Yerevan",
            "kind": "city",
            "country": "ARM",
            "latitude": "40.181100",
            "longitude": "44.513600",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    url = response.json()["url"]
    assert api.get(url).json()["latitude"] == "40.181100"
    assert client.patch(url, {"name": "Erevan"}, format="json").json()["name"] == "Erevan"
    assert client.delete(url).status_code == 204
    assert not Place.objects.filter(slug="yerevan").exists()


def test_coordinates_come_in_pairs(token_client):
    response = token_client("add_place").post(
        PLACES, {"slug": "x", "name": "X", "kind": "city", "latitude": "40.1"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/longitude"


def test_a_place_with_events_cannot_be_deleted(token_client):
    place = PlaceFactory()
    EventFactory(place=place)
    response = token_client("delete_place").delete(f"{PLACES}{place.pk}/")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "This record is still referenced by events; remove those first."
    )


def test_place_filters(api, seeded):
    regions = api.get(PLACES, {"kind": "region"}).json()["results"]
    assert [r["name"] for r in regions] == ["Caucasus", "Nagorno-Karabakh"]
    assert [r["name"] for r in api.get(PLACES, {"q": "karabakh"}).json()["results"]] == [
        "Nagorno-Karabakh"
    ]


def test_a_place_without_a_slug_gets_one_and_places_are_listed_by_slug(api, token_client):
    client = token_client("add_place")
    response = client.post(PLACES, {"name": "Brussels", "kind": "city"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["slug"] == "brussels"
    found = api.get(PLACES, {"slug": "brussels"}).json()["results"]
    assert [place["name"] for place in found] == ["Brussels"]
