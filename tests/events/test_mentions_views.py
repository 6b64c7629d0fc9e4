"""GET /api/v1/sources/{id}/mentions/ and the source's admin page, which show
what a source's text mentions (events.mentions)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.mentions import name_index
from sources.models import Source
from tests.factories import ActorAliasFactory, ActorFactory, PlaceFactory, SourceFactory

pytestmark = pytest.mark.django_db

TEXT = (
    'Armenia said on 9 November 2023 that Baku’s offer was "a step". '
    "Talks in Brussels resumed in November 2023, as in 1991."
)


@pytest.fixture
def source():
    armenia = ActorFactory(name="Armenia", slug="armenia")
    ActorAliasFactory(actor=armenia, name="Yerevan")
    ActorFactory(name="Azerbaijan", slug="azerbaijan").aliases.create(name="Baku")
    PlaceFactory(name="Armenia", slug="armenia-place", kind="country")
    PlaceFactory(name="Brussels", slug="brussels")
    return SourceFactory(text=TEXT)


def test_the_mentions_of_a_source_with_offsets(api, source):
    response = api.get(f"/api/v1/sources/{source.pk}/mentions/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"names", "dates", "quotes"}
    armenia, baku, brussels = body["names"]
    assert (armenia["start"], armenia["end"], armenia["text"]) == (0, 7, "Armenia")
    assert [(m["kind"], m["slug"], m["name"]) for m in armenia["matches"]] == [
        ("actor", "armenia", "Armenia"),
        ("place", "armenia-place", "Armenia"),
    ]
    assert baku["text"] == "Baku" and baku["matches"][0]["name"] == "Azerbaijan"  # an alias
    assert brussels["matches"][0]["kind"] == "place"
    assert body["dates"] == [
        {
            "start": 16,
            "end": 31,
            "text": "9 November 2023",
            "date_start": "2023-11-09",
            "date_end": "2023-11-09",
            "date_precision": "day",
        },
        {
            "start": TEXT.index("November 2023,"),
            "end": TEXT.index("November 2023,") + 13,
            "text": "November 2023",
            "date_start": "2023-11-01",
            "date_end": "2023-11-30",
            "date_precision": "month",
        },
        {
            "start": TEXT.index("1991"),
            "end": TEXT.index("1991") + 4,
            "text": "1991",
            "date_start": "1991-01-01",
            "date_end": "1991-12-31",
            "date_precision": "year",
        },
    ]
    assert body["quotes"] == [{"start": 55, "end": 61, "text": "a step"}]
    for kind in ("names", "dates", "quotes"):
        for span in body[kind]:
            assert TEXT[span["start"] : span["end"]] == span["text"]


def test_an_unknown_source_is_a_404_problem(api):
    response = api.get("/api/v1/sources/999999/mentions/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_unknown_query_parameters_are_refused(api, source):
    response = api.get(f"/api/v1/sources/{source.pk}/mentions/?kind=actor")
    assert response.status_code == 400
    assert response.json()["errors"][0]["parameter"] == "kind"


def test_mentions_are_read_only(token_client, source):
    response = token_client("add_source").post(f"/api/v1/sources/{source.pk}/mentions/", {})
    assert response.status_code == 405


@pytest.mark.django_db(transaction=True)
def test_the_mentions_take_three_queries_once_the_automaton_is_built(api, source):
    url = f"/api/v1/sources/{source.pk}/mentions/"
    name_index()  # built for the registry as committed
    with CaptureQueriesContext(connection) as queries:
        assert api.get(url).status_code == 200
    # The source; the latest feed entry of the actors, then of the places.
    assert len(queries) == 3, [q["sql"] for q in queries]


def test_the_schema_declares_the_mentions(api):
    schema = api.get("/api/v1/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/sources/{id}/mentions/"]["get"]
    assert operation["operationId"] == "sources_mentions_retrieve"
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Mentions"
    }
    assert "404" in operation["responses"]
    names = schema["components"]["schemas"]["NameMention"]
    assert set(names["required"]) == {"start", "end", "text", "matches"}


# The admin ------------------------------------------------------------------------


def test_the_source_page_shows_the_mentions_highlighted(admin_client, source):
    response = admin_client.get(f"/admin/sources/source/{source.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="mention-text"' in page
    azerbaijan = source_actor("azerbaijan")
    assert (
        f'<a class="mention-name" href="/admin/actors/actor/{azerbaijan}/change/" '
        'title="actor azerbaijan">Baku</a>' in page
    )
    # Armenia is an actor and a place: the name is marked, both records linked.
    assert '<span class="mention-name">Armenia</span><sup class="mention-records">' in page
    assert '<span class="mention-date" title="2023-11-09 to 2023-11-09 (day)">' in page
    assert '<span class="mention-quote">a step</span>' in page
    assert "events/mentions.css" in page


def source_actor(slug: str) -> int:
    from actors.models import Actor

    return Actor.objects.get(slug=slug).pk


def test_the_source_text_is_escaped_on_the_admin_page(admin_client):
    ActorFactory(name="Armenia", slug="armenia")
    source = SourceFactory(text='<script>alert("Armenia")</script> & <b>Armenia</b>')
    response = admin_client.get(f"/admin/sources/source/{source.pk}/change/")
    page = response.content.decode()
    highlighted = page[page.index('<div class="mention-text">') :]
    highlighted = highlighted[: highlighted.index("</div>")]
    assert "<script>" not in highlighted and "<b>" not in highlighted
    assert "&lt;script&gt;alert(" in highlighted
    assert "&amp; &lt;b&gt;" in highlighted
    # The quote inside the script tag is found too, and the name in it linked.
    assert '<span class="mention-quote"><a class="mention-name"' in highlighted


def test_the_add_page_has_no_mentions_yet(admin_client):
    response = admin_client.get("/admin/sources/source/add/")
    assert response.status_code == 200
    assert "Shown once the source is saved." in response.content.decode()
    assert Source.objects.count() == 0
