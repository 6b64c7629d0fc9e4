import pytest
from rest_framework.fields import DateTimeField

from actors.models import Actor, ActorIdentifier, Affiliation
from tests.factories import ActorFactory, EventParticipantFactory, SourceFactory

pytestmark = pytest.mark.django_db

ACTORS = "/api/v1/actors/"
AFFILIATIONS = "/api/v1/affiliations/"


@pytest.mark.smoke
def test_actor_detail_with_aliases_identifiers_and_links(api, seeded):
    russia = Actor.objects.get(slug="russia")
    response = api.get(f"{ACTORS}{russia.pk}/")
    assert response.status_code == 200
    assert response.json() == {
        "id": russia.pk,
        "url": f"http://testserver/api/v1/actors/{russia.pk}/",
        "revision": 1,
        "slug": "russia",
        "name": "Russia",
        "kind": "country",
        "country": "RUS",
        "sector": "",
        "description": "Russian Federation; the article also refers to it as Moscow.",
        "aliases": ["Moscow", "Russian Federation"],
        "identifiers": [
            {"scheme": "iso3166", "value": "RUS"},
            {"scheme": "wikidata", "value": "Q159"},
        ],
        "events_url": f"http://testserver/api/v1/events/?actor={russia.pk}",
        "statements_url": f"http://testserver/api/v1/statements/?speaker={russia.pk}",
        "affiliations_url": f"http://testserver/api/v1/affiliations/?actor={russia.pk}",
        "merged_into": None,
        "created_at": DateTimeField().to_representation(russia.created_at),
        "updated_at": DateTimeField().to_representation(russia.updated_at),
    }


def test_the_events_link_lists_the_actors_events(api, seeded):
    russia = Actor.objects.get(slug="russia")
    events_url = api.get(f"{ACTORS}{russia.pk}/").json()["events_url"]
    titles = {row["title"] for row in api.get(events_url).json()["results"]}
    assert "Russia invades Ukraine" in titles and len(titles) == 6


class TestFilters:
    def test_kind_and_country(self, api, seeded):
        response = api.get(ACTORS, {"kind": ["military", "igo"]})
        assert sorted(r["slug"] for r in response.json()["results"]) == [
            "european-union",
            "russian-peacekeepers-caucasus",
            "us-soldiers",
        ]
        arm = api.get(ACTORS, {"country": "ARM"}).json()["results"]
        assert sorted(r["slug"] for r in arm) == [
            "armenia",
            "armenian-ambassador-to-russia",
            "nikol-pashinyan",
        ]

    def test_q_searches_names_and_aliases(self, api, seeded):
        assert [r["slug"] for r in api.get(ACTORS, {"q": "moscow"}).json()["results"]] == ["russia"]
        by_name = api.get(ACTORS, {"q": "pashin"}).json()["results"]
        assert [r["slug"] for r in by_name] == ["nikol-pashinyan"]

    def test_identifier(self, api, seeded):
        response = api.get(ACTORS, {"identifier": "wikidata:Q399"})
        assert [r["slug"] for r in response.json()["results"]] == ["armenia"]
        assert api.get(ACTORS, {"identifier": "wikidata:Q1"}).json()["results"] == []

    def test_a_malformed_identifier_is_refused(self, api):
        response = api.get(ACTORS, {"identifier": "Q399"})
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {
                "parameter": "identifier",
                "detail": "Use scheme:value, e.g. wikidata:Q399.",
                "code": "invalid",
            }
        ]

    def test_name_ordering_pages_through_all_actors(self, api, seeded):
        names, url = [], f"{ACTORS}?page_size=5&ordering=-name"
        while url:
            body = api.get(url).json()
            names += [r["name"] for r in body["results"]]
            url = body["next"]
        assert names == sorted(Actor.objects.values_list("name", flat=True), reverse=True)


@pytest.mark.parametrize("page_size", [1, 50])
def test_actor_list_runs_three_queries(api, seeded, django_assert_num_queries, page_size):
    # 1. the page of actors, 2. their aliases, 3. their identifiers
    with django_assert_num_queries(3):
        api.get(ACTORS, {"page_size": page_size})


def test_actor_detail_runs_three_queries(api, seeded, django_assert_num_queries):
    url = f"{ACTORS}{Actor.objects.first().pk}/"
    with django_assert_num_queries(3):  # the actor, its aliases, its identifiers
        assert api.get(url).status_code == 200


class TestActorWrites:
    BODY = {
        "slug": "georgia",
        "name": "Georgia",
        "kind": "country",
        "country": "GEO",
        "aliases": ["Sakartvelo"],
        "identifiers": [{"scheme": "wikidata", "value": "Q230"}],
    }

    def test_create(self, token_client):
        response = token_client("add_actor").post(ACTORS, self.BODY, format="json")
        assert response.status_code == 201, response.json()
        actor = Actor.objects.get(slug="georgia")
        assert response["Location"] == f"http://testserver/api/v1/actors/{actor.pk}/"
        assert [a.name for a in actor.aliases.all()] == ["Sakartvelo"]
        assert str(actor.identifiers.get()) == "wikidata:Q230"

    def test_a_taken_slug_or_identifier_is_refused(self, token_client, seeded):
        body = {
            **self.BODY,
            "slug": "armenia",
            "identifiers": [{"scheme": "wikidata", "value": "Q399"}],
        }
        response = token_client("add_actor").post(ACTORS, body, format="json")
        assert response.status_code == 400
        assert {e["pointer"] for e in response.json()["errors"]} == {"/slug", "/identifiers"}

    def test_a_bad_country_code_is_refused(self, token_client):
        response = token_client("add_actor").post(
            ACTORS, {**self.BODY, "country": "Georgia"}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "/country"

    def test_patch_replaces_aliases_only_when_given(self, token_client, seeded):
        russia = Actor.objects.get(slug="russia")
        client = token_client("change_actor")
        response = client.patch(f"{ACTORS}{russia.pk}/", {"sector": "GOV"}, format="json")
        assert response.status_code == 200
        assert response.json()["aliases"] == ["Moscow", "Russian Federation"]
        response = client.patch(f"{ACTORS}{russia.pk}/", {"aliases": ["Kremlin"]}, format="json")
        assert response.json()["aliases"] == ["Kremlin"]
        assert ActorIdentifier.objects.filter(actor=russia).count() == 2

    def test_an_actor_still_referenced_cannot_be_deleted(self, token_client):
        participant = EventParticipantFactory()
        response = token_client("delete_actor").delete(f"{ACTORS}{participant.actor_id}/")
        assert response.status_code == 409
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["detail"] == (
            "This record is still referenced by event participants; remove those first."
        )
        assert Actor.objects.filter(pk=participant.actor_id).exists()

    def test_an_unreferenced_actor_is_deleted(self, token_client):
        actor = ActorFactory()
        assert token_client("delete_actor").delete(f"{ACTORS}{actor.pk}/").status_code == 204
        assert not Actor.objects.filter(pk=actor.pk).exists()


class TestAffiliations:
    def test_list_and_filters(self, api, seeded):
        armenia = Actor.objects.get(slug="armenia")
        by_org = api.get(AFFILIATIONS, {"organization": armenia.pk}).json()["results"]
        assert sorted(r["role"] for r in by_org) == ["Ambassador to Russia", "Prime Minister"]
        by_actor = api.get(AFFILIATIONS, {"actor": armenia.pk}).json()["results"]
        assert len(by_actor) == 2
        by_role = api.get(AFFILIATIONS, {"role": "prime"}).json()["results"]
        assert [r["member"]["name"] for r in by_role] == ["Nikol Pashinyan"]
        assert by_role[0]["evidence"][0]["quote"] == "Armenian Prime Minister Nikol Pashinyan"

    def test_list_runs_two_queries(self, api, seeded, django_assert_num_queries):
        # 1. affiliations joined with member and organisation, 2. their evidence
        with django_assert_num_queries(2):
            api.get(AFFILIATIONS)

    def test_create_update_delete(self, token_client):
        source = SourceFactory(text="Foreign Minister Ararat Mirzoyan of Armenia spoke.")
        member, organization = ActorFactory(kind="person"), ActorFactory()
        client = token_client("add_affiliation", "change_affiliation", "delete_affiliation")
        response = client.post(
            AFFILIATIONS,
            {
                "member": member.pk,
                "organization": organization.pk,
                "role": "Foreign Minister",
                "evidence": [{"source": source.pk, "quote": "Foreign Minister Ararat Mirzoyan"}],
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        url = response.json()["url"]
        response = client.patch(
            url, {"end_date": "2025-01-01", "end_precision": "day"}, format="json"
        )
        assert response.json()["end_date"] == "2025-01-01"
        assert client.delete(url).status_code == 204
        assert Affiliation.objects.count() == 0

    def test_self_affiliation_is_refused(self, token_client):
        source = SourceFactory()
        actor = ActorFactory()
        response = token_client("add_affiliation").post(
            AFFILIATIONS,
            {
                "member": actor.pk,
                "organization": actor.pk,
                "role": "Member",
                "evidence": [{"source": source.pk, "start": 0, "end": 7}],
            },
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "/organization"


def test_an_actor_created_without_a_slug_gets_one_from_its_name(token_client):
    client = token_client("add_actor", "change_actor")
    first = client.post(ACTORS, {"name": "Côte d'Ivoire", "kind": "country"}, format="json")
    second = client.post(ACTORS, {"name": "Côte d’Ivoire", "kind": "country"}, format="json")
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["slug"], second.json()["slug"]) == ("cote-divoire", "cote-divoire-2")
    # A full update that leaves the slug out keeps it.
    url = first.json()["url"]
    replaced = client.put(url, {"name": "Ivory Coast", "kind": "country"}, format="json")
    assert replaced.status_code == 200, replaced.json()
    assert replaced.json()["slug"] == "cote-divoire"
    assert Actor.objects.get(slug="cote-divoire").name == "Ivory Coast"


def test_actors_are_listed_by_slug(api, token_client):
    token_client("add_actor").post(ACTORS, {"name": "Armenia", "kind": "country"}, format="json")
    token_client("add_actor").post(ACTORS, {"name": "Armenia", "kind": "country"}, format="json")
    found = api.get(ACTORS, {"slug": "armenia-2"}).json()["results"]
    assert [actor["slug"] for actor in found] == ["armenia-2"]
    assert api.get(ACTORS, {"slug": "nobody"}).json()["results"] == []
