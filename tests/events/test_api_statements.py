import pytest
from rest_framework.fields import DateTimeField

from actors.models import Actor
from events.models import Event, Statement, StatementActor
from tests.factories import ActorFactory, EventFactory, SourceFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/statements/"


def actor(slug: str) -> Actor:
    return Actor.objects.get(slug=slug)


def ref(a: Actor) -> dict:
    return {
        "id": a.pk,
        "url": f"http://testserver/api/v1/actors/{a.pk}/",
        "name": a.name,
        "kind": a.kind,
    }


@pytest.mark.smoke
def test_statement_detail_has_speaker_targets_topics_and_evidence(api, seeded):
    statement = Statement.objects.get(kind="appeal")
    event = Event.objects.get(mode="ethnic-cleansing")
    evidence = statement.evidence.get()
    response = api.get(f"{URL}{statement.pk}/")
    assert response.status_code == 200
    assert response.json() == {
        "id": statement.pk,
        "url": f"http://testserver/api/v1/statements/{statement.pk}/",
        "revision": 1,
        "speaker": ref(actor("armenia")),
        "kind": "appeal",
        "content": 'Urges the international community to prevent "ethnic cleansing" in '
        "Nagorno-Karabakh.",
        "quote": "ethnic cleansing",
        "stance": "",
        "date_start": None,
        "date_end": "2023-11-09",
        "date_precision": "unknown",
        "date_display": "before 9 Nov 2023",
        "targets": [ref(actor("international-community"))],
        "about_actors": [ref(actor("ethnic-armenians-nagorno-karabakh"))],
        "about_events": [
            {
                "id": event.pk,
                "url": f"http://testserver/api/v1/events/{event.pk}/",
                "title": "Ethnic cleansing of Armenians in Nagorno-Karabakh",
            }
        ],
        "evidence": [
            {
                "source": evidence.source_id,
                "start": evidence.start,
                "end": evidence.end,
                "quote": "While Armenia acknowledges that Nagorno-Karabakh is now recognized as "
                "Azerbaijan’s sovereign territory, it urges the international community to "
                "prevent “ethnic cleansing” in the region",
            }
        ],
        "review_status": "draft",
        "created_at": DateTimeField().to_representation(statement.created_at),
        "updated_at": DateTimeField().to_representation(statement.updated_at),
    }


class TestFilters:
    def test_speaker(self, api, seeded):
        response = api.get(URL, {"speaker": actor("nikol-pashinyan").pk})
        assert sorted(r["kind"] for r in response.json()["results"]) == [
            "assessment",
            "concern",
            "demand",
        ]

    def test_kind_takes_several_values(self, api, seeded):
        response = api.get(URL, {"kind": ["appeal", "acknowledgement"]})
        assert sorted(r["kind"] for r in response.json()["results"]) == [
            "acknowledgement",
            "appeal",
        ]

    def test_target_and_about(self, api, seeded):
        by_target = api.get(URL, {"target": actor("russia").pk}).json()["results"]
        assert [r["kind"] for r in by_target] == ["criticism"]
        about = api.get(URL, {"about_actor": actor("azerbaijan").pk}).json()["results"]
        assert len(about) == 3
        talks = Event.objects.get(mode="mediated-talks")
        about_event = api.get(URL, {"about_event": talks.pk}).json()["results"]
        assert [r["kind"] for r in about_event] == ["demand"]

    def test_date_range_and_source(self, api, seeded):
        source_id = Statement.objects.first().evidence.first().source_id
        assert len(api.get(URL, {"date_before": "2023-11-09"}).json()["results"]) == 8
        assert len(api.get(URL, {"date_after": "2023-11-10"}).json()["results"]) == 0
        assert len(api.get(URL, {"source": source_id}).json()["results"]) == 8

    def test_full_text_search_covers_content_quotes_and_evidence(self, api, seeded):
        by_content = api.get(URL, {"q": "guarantor"}).json()["results"]
        assert [r["kind"] for r in by_content] == ["assessment"]
        by_quote = api.get(URL, {"q": "difficult"}).json()["results"]
        assert [r["quote"] for r in by_quote] == ["difficult"]
        by_evidence = api.get(URL, {"q": "unfavorably"}).json()["results"]
        assert [r["kind"] for r in by_evidence] == ["criticism"]

    def test_a_bad_kind_is_refused(self, api):
        response = api.get(URL, {"kind": "gossip"})
        assert response.status_code == 400
        assert response.json()["errors"][0]["parameter"] == "kind"


@pytest.mark.parametrize("page_size", [1, 50])
def test_list_runs_four_queries(api, seeded, django_assert_num_queries, page_size):
    # 1. the page of statements joined with their speakers
    # 2. their linked actors (targets and topics) joined with the actors
    # 3. the events they are about
    # 4. their evidence spans
    with django_assert_num_queries(4):
        response = api.get(URL, {"page_size": page_size})
    assert len(response.json()["results"]) == page_size if page_size == 1 else 8


def test_detail_runs_four_queries(api, seeded, django_assert_num_queries):
    statement = Statement.objects.first()
    with django_assert_num_queries(4):  # the same four as the list
        assert api.get(f"{URL}{statement.pk}/").status_code == 200


class TestWrites:
    def test_create_with_targets_topics_and_a_verbatim_quote(self, token_client):
        source = SourceFactory(text="Russia called the talks “difficult” and blamed Armenia.")
        russia, armenia = ActorFactory(name="Russia"), ActorFactory(name="Armenia")
        event = EventFactory(title="Talks")
        response = token_client("add_statement").post(
            URL,
            {
                "speaker": russia.pk,
                "kind": "criticism",
                "content": "The talks were difficult, and Armenia is to blame.",
                "quote": "difficult",
                "stance": "critical",
                "date_start": "2023-11-09",
                "date_end": "2023-11-09",
                "targets": [armenia.pk],
                "about_events": [event.pk],
                "evidence": [{"source": source.pk, "quote": "Russia called the talks “difficult”"}],
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        statement = Statement.objects.get(pk=response.json()["id"])
        assert [a.name for a in statement.targets] == ["Armenia"]
        assert list(statement.about_events.all()) == [event]
        assert response.json()["evidence"][0]["quote"] == "Russia called the talks “difficult”"

    def test_a_quote_outside_the_evidence_is_refused(self, token_client):
        source = SourceFactory(text="Russia called the talks difficult.")
        response = token_client("add_statement").post(
            URL,
            {
                "speaker": ActorFactory().pk,
                "kind": "claim",
                "content": "x",
                "quote": "catastrophic",
                "date_end": "2023-11-09",
                "date_precision": "unknown",
                "evidence": [{"source": source.pk, "quote": "Russia called the talks"}],
            },
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "/quote"
        assert Statement.objects.count() == 0

    def test_an_unknown_speaker_is_refused(self, token_client):
        source = SourceFactory()
        response = token_client("add_statement").post(
            URL,
            {
                "speaker": 999999,
                "kind": "claim",
                "content": "x",
                "date_end": "2023-11-09",
                "evidence": [{"source": source.pk, "start": 0, "end": 7}],
            },
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {
                "pointer": "/speaker",
                "detail": 'Invalid pk "999999" - object does not exist.',
                "code": "does_not_exist",
            }
        ]

    def test_patch_replaces_only_the_lists_given(self, token_client, seeded):
        statement = Statement.objects.get(kind="appeal")
        eu = actor("european-union")
        response = token_client("change_statement").patch(
            f"{URL}{statement.pk}/", {"targets": [eu.pk], "stance": "critical"}, format="json"
        )
        assert response.status_code == 200, response.json()
        assert [t["name"] for t in response.json()["targets"]] == ["European Union"]
        assert [t["name"] for t in response.json()["about_actors"]] == [
            "Ethnic Armenians of Nagorno-Karabakh"
        ]
        assert StatementActor.objects.filter(statement=statement).count() == 2

    def test_delete(self, token_client, seeded):
        statement = Statement.objects.get(kind="appeal")
        assert token_client("delete_statement").delete(f"{URL}{statement.pk}/").status_code == 204
        assert not Statement.objects.filter(pk=statement.pk).exists()
        assert Actor.objects.filter(slug="international-community").exists()
