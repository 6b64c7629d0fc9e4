import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.fields import DateTimeField

from events.models import Event, EventParticipant
from sources.models import Evidence
from tests.factories import (
    ActorFactory,
    EventFactory,
    EventParticipantFactory,
    PlaceFactory,
    SourceFactory,
)

pytestmark = pytest.mark.django_db

D = datetime.date
URL = "/api/v1/events/"


def stamp(value: datetime.datetime) -> str:
    return DateTimeField().to_representation(value)


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def talks():
    """An event with a place, two participants and one evidence span."""
    source = SourceFactory(text="Armenia and Azerbaijan held talks in Brussels.")
    place = PlaceFactory(name="Brussels", kind="city", country="BEL")
    event = Event.objects.create(
        type="CONSULT",
        mode="mediated-talks",
        context=["diplomatic"],
        status="occurred",
        title="Talks in Brussels",
        summary="Border talks.",
        date_start=D(2024, 3, 15),
        date_end=D(2024, 3, 15),
        date_precision="day",
        place=place,
        place_text="Brussels",
    )
    armenia = ActorFactory(name="Armenia", kind="country", country="ARM")
    azerbaijan = ActorFactory(name="Azerbaijan", kind="country", country="AZE")
    EventParticipant.objects.create(event=event, actor=armenia, role="initiator")
    EventParticipant.objects.create(event=event, actor=azerbaijan, role="target")
    Evidence.objects.create(source=source, start=0, end=33, quote=source.text[:33], event=event)
    return event


def test_event_detail_has_participants_place_and_evidence(api, talks):
    response = api.get(f"{URL}{talks.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    armenia, azerbaijan = (p.actor for p in talks.participants.order_by("id"))
    place, source = talks.place, talks.evidence.get().source
    assert response.json() == {
        "id": talks.pk,
        "url": f"http://testserver/api/v1/events/{talks.pk}/",
        "revision": 1,
        "type": "CONSULT",
        "quad_class": "verbal_cooperation",
        "mode": "mediated-talks",
        "context": ["diplomatic"],
        "vocabulary_version": "el-plover-1.0",
        "status": "occurred",
        "title": "Talks in Brussels",
        "summary": "Border talks.",
        "date_start": "2024-03-15",
        "date_end": "2024-03-15",
        "date_precision": "day",
        "date_display": "15 Mar 2024",
        "place": {
            "id": place.pk,
            "url": f"http://testserver/api/v1/places/{place.pk}/",
            "name": "Brussels",
            "kind": "city",
            "country": "BEL",
        },
        "place_text": "Brussels",
        "participants": [
            {
                "actor": {
                    "id": armenia.pk,
                    "url": f"http://testserver/api/v1/actors/{armenia.pk}/",
                    "name": "Armenia",
                    "kind": "country",
                },
                "role": "initiator",
            },
            {
                "actor": {
                    "id": azerbaijan.pk,
                    "url": f"http://testserver/api/v1/actors/{azerbaijan.pk}/",
                    "name": "Azerbaijan",
                    "kind": "country",
                },
                "role": "target",
            },
        ],
        "evidence": [
            {
                "source": source.pk,
                "start": 0,
                "end": 33,
                "quote": "Armenia and Azerbaijan held talks",
            }
        ],
        "review_status": "draft",
        "statements_url": f"http://testserver/api/v1/statements/?about_event={talks.pk}",
        "created_at": stamp(talks.created_at),
        "updated_at": stamp(talks.updated_at),
    }


def test_unknown_event_is_a_404_problem(api):
    response = api.get(f"{URL}999999/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:event-ledger:problem:not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "No Event matches the given query.",
        "instance": "/api/v1/events/999999/",
    }


class TestListAndPagination:
    def test_the_list_is_a_page_with_a_next_link(self, api, seeded):
        response = api.get(URL, {"page_size": 5})
        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["next", "results"]
        assert len(body["results"]) == 5
        assert body["next"].startswith("http://testserver/api/v1/events/?")
        assert "cursor=" in body["next"] and "page_size=5" in body["next"]

    @pytest.mark.parametrize("ordering", ["date", "-date", "id", "-id"])
    def test_paging_through_all_pages_visits_every_event_once_in_order(self, api, seeded, ordering):
        seen, url = [], f"{URL}?page_size=4&ordering={ordering}"
        while url:
            body = api.get(url).json()
            seen += body["results"]
            url = body["next"]
        assert len(seen) == Event.objects.count() == 14
        assert len({row["id"] for row in seen}) == 14
        keys = [
            (row["date_start"] or row["date_end"], row["id"])
            if "date" in ordering
            else (row["id"],)
            for row in seen
        ]
        assert keys == sorted(keys, reverse=ordering.startswith("-"))

    def test_the_default_page_holds_50_rows(self, api):
        for day in range(60):
            EventFactory(date_start=D(2020, 1, 1) + datetime.timedelta(days=day), date_end=None)
        body = api.get(URL).json()
        assert len(body["results"]) == 50 and body["next"]
        assert len(api.get(body["next"]).json()["results"]) == 10

    def test_rows_inserted_meanwhile_do_not_shift_pages(self, api):
        events = [
            EventFactory(date_start=D(2023, 1, d), date_end=D(2023, 1, d)) for d in range(1, 7)
        ]
        first = api.get(URL, {"ordering": "date", "page_size": 3}).json()
        assert ids_of(first) == [e.pk for e in events[:3]]
        EventFactory(date_start=D(2022, 12, 31), date_end=D(2022, 12, 31))  # before the cursor
        second = api.get(first["next"]).json()
        assert ids_of(second) == [e.pk for e in events[3:]]

    @pytest.mark.parametrize("size", ["0", "501", "ten", "-1"])
    def test_a_bad_page_size_is_refused(self, api, size):
        response = api.get(URL, {"page_size": size})
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {
                "parameter": "page_size",
                "detail": "Must be a whole number from 1 to 500.",
                "code": "invalid",
            }
        ]

    def test_page_size_500_is_allowed(self, api, seeded):
        assert api.get(URL, {"page_size": 500}).status_code == 200

    @pytest.mark.parametrize("cursor", ["garbage", "eyJvIjoiZGF0ZSJ9", "e30"])
    def test_a_bad_cursor_is_refused(self, api, cursor):
        response = api.get(URL, {"cursor": cursor})
        assert response.status_code == 400
        assert response.json()["errors"][0]["parameter"] == "cursor"

    def test_a_cursor_is_bound_to_its_ordering(self, api, seeded):
        next_link = api.get(URL, {"ordering": "id", "page_size": 2}).json()["next"]
        response = api.get(next_link.replace("ordering=id", "ordering=date"))
        assert response.status_code == 400
        assert response.json()["errors"][0]["parameter"] == "cursor"

    def test_an_unknown_ordering_is_refused(self, api):
        response = api.get(URL, {"ordering": "title"})
        assert response.status_code == 400
        assert response.json()["errors"][0] == {
            "parameter": "ordering",
            "detail": "Unknown ordering 'title'; use one of date, -date, id, -id, relevance.",
            "code": "invalid",
        }


def ids_of(body: dict) -> list[int]:
    return [row["id"] for row in body["results"]]


class TestFilters:
    def test_type_takes_several_values(self, api, seeded):
        response = api.get(URL, {"type": ["COOPERATE", "ACCUSE"], "ordering": "id"})
        assert response.status_code == 200
        titles = sorted(row["title"] for row in response.json()["results"])
        assert titles == [
            "Armenia invites U.S. soldiers for joint military exercises",
            "Armenia seeks alternative partners to Russia",
            "Russia summons the Armenian ambassador",
        ]

    def test_actor_matches_any_role(self, api, seeded):
        russia = ActorFactory._meta.model.objects.get(slug="russia")
        response = api.get(URL, {"actor": russia.pk, "page_size": 100})
        expected = set(
            Event.objects.filter(participants__actor=russia).values_list("id", flat=True)
        )
        assert set(ids(response)) == expected
        assert len(expected) == 6

    def test_actor_with_role(self, api, seeded):
        russia = ActorFactory._meta.model.objects.get(slug="russia")
        response = api.get(URL, {"actor": russia.pk, "role": "mediator"})
        assert [row["mode"] for row in response.json()["results"]] == ["mediated-talks"]

    def test_role_alone(self, api, seeded):
        response = api.get(URL, {"role": "mediator"})
        assert [row["mode"] for row in response.json()["results"]] == ["mediated-talks"]

    def test_initiator_and_target(self, api, seeded):
        model = ActorFactory._meta.model
        russia, ukraine = model.objects.get(slug="russia"), model.objects.get(slug="ukraine")
        response = api.get(URL, {"initiator": russia.pk, "target": ukraine.pk})
        assert [row["title"] for row in response.json()["results"]] == ["Russia invades Ukraine"]
        assert api.get(URL, {"initiator": ukraine.pk}).json()["results"] == []

    def test_country_and_place(self, api, seeded):
        response = api.get(URL, {"country": "AZE", "ordering": "id"})
        places = {row["place"]["name"] for row in response.json()["results"]}
        assert places == {"Nagorno-Karabakh"} and len(response.json()["results"]) == 6
        place_id = response.json()["results"][0]["place"]["id"]
        assert len(api.get(URL, {"place": place_id}).json()["results"]) == 6

    def test_date_range_matches_overlapping_intervals(self, api):
        inside = EventFactory(date_start=D(2023, 5, 1), date_end=D(2023, 5, 3))
        spanning = EventFactory(date_start=D(2022, 1, 1), date_end=D(2024, 12, 31))
        open_start = EventFactory(date_start=None, date_end=D(2023, 6, 1), date_precision="unknown")
        open_end = EventFactory(date_start=D(2023, 5, 30), date_end=None, date_precision="unknown")
        EventFactory(date_start=D(2023, 7, 1), date_end=D(2023, 7, 2))  # after
        EventFactory(date_start=D(2020, 1, 1), date_end=D(2020, 1, 2))  # before
        response = api.get(URL, {"date_after": "2023-05-01", "date_before": "2023-06-01"})
        assert set(ids(response)) == {inside.pk, spanning.pk, open_start.pk, open_end.pk}

    def test_a_bad_date_is_refused(self, api):
        response = api.get(URL, {"date_after": "yesterday"})
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {
                "parameter": "date_after",
                "detail": "Use the format YYYY-MM-DD, e.g. 2023-11-09.",
                "code": "invalid",
            }
        ]

    def test_status_context_and_review_status(self, api, seeded):
        hypothetical = api.get(URL, {"status": "hypothetical"}).json()["results"]
        assert len(hypothetical) == 3
        both = api.get(URL, {"status": ["hypothetical", "ongoing"]}).json()["results"]
        assert len(both) == 5
        assert len(api.get(URL, {"context": "ethnic"}).json()["results"]) == 3
        assert len(api.get(URL, {"review_status": "reviewed"}).json()["results"]) == 0

    def test_source(self, api, seeded):
        other = EventFactory()
        source_id = other.evidence.get().source_id
        assert ids(api.get(URL, {"source": source_id})) == [other.pk]

    def test_full_text_search_covers_titles_summaries_and_evidence(self, api, seeded):
        by_title = api.get(URL, {"q": "ambassador"}).json()["results"]
        assert [row["title"] for row in by_title] == ["Russia summons the Armenian ambassador"]
        # "railways" appears only in the summary and evidence of one event
        by_summary = api.get(URL, {"q": "railways"}).json()["results"]
        assert [row["mode"] for row in by_summary] == ["delegation-of-control"]
        # "populated" appears only in evidence quotes (of three events)
        by_evidence = api.get(URL, {"q": "populated"}).json()["results"]
        assert len(by_evidence) == 3
        # stemming: "invade" finds "invasion"? no, but "invades" and "invaded" share a stem
        assert len(api.get(URL, {"q": "invaded"}).json()["results"]) == 1
        assert api.get(URL, {"q": '"ethnic cleansing" -Armenians'}).status_code == 200

    def test_search_pages_through_title_and_evidence_matches_in_order(self, api):
        source = SourceFactory(text="Glacier melt talks. Nothing else.")
        matching = []
        for day in range(1, 13):
            where = ["title", "evidence", "both", "neither"][day % 4]
            event = EventFactory(
                title="Glacier talks" if where in ("title", "both") else "Other talks",
                date_start=D(2023, 5, day),
                date_end=D(2023, 5, day),
            )
            if where in ("evidence", "both"):
                Evidence.objects.create(event=event, source=source, start=0, end=7, quote="Glacier")
            if where != "neither":
                matching.append(event)
        seen, url, params = [], URL, {"q": "glacier", "page_size": 2}
        while url:
            page = api.get(url, params).json()
            assert len(page["results"]) <= 2
            seen += ids_of(page)
            url, params = page["next"], None
        assert seen == [e.pk for e in reversed(matching)]  # newest first, each once

    def test_filters_combine(self, api, seeded):
        russia = ActorFactory._meta.model.objects.get(slug="russia")
        response = api.get(URL, {"actor": russia.pk, "type": "AID"})
        assert len(response.json()["results"]) == 2


class TestQueryCounts:
    @pytest.mark.parametrize("page_size", [2, 50])
    def test_list_runs_one_query_whatever_the_page_size(
        self, api, seeded, django_assert_num_queries, page_size
    ):
        # The page of events with their places, participants' actors and evidence
        # aggregated in subqueries.
        with django_assert_num_queries(1):
            response = api.get(URL, {"page_size": page_size})
        assert len(response.json()["results"]) == min(page_size, 14)

    def test_filtered_list_runs_one_query(self, api, seeded):
        with CaptureQueriesContext(connection) as captured:
            response = api.get(URL, {"q": "Russia", "type": "AID", "date_before": "2023-12-01"})
        assert len(response.json()["results"]) == 2
        # A search's own statement timeout (in a transaction), the page's query
        # with its rows' snippets (filters are subqueries of it) and, since the
        # test's transaction encloses the search's savepoint, the enclosing
        # transaction's timeout back.
        statements = [q["sql"] for q in captured if "SAVEPOINT" not in q["sql"]]
        assert len(statements) == 3
        assert statements[0] == "SET LOCAL statement_timeout = 3000"
        assert "ts_headline" in statements[1]
        assert statements[2] == "SET LOCAL statement_timeout = DEFAULT"

    def test_detail_runs_one_query(self, api, talks, django_assert_num_queries):
        with django_assert_num_queries(1):
            assert api.get(f"{URL}{talks.pk}/").status_code == 200

    def test_a_patch_of_a_summary_loads_and_checks_only_what_it_changes(
        self, talks, token_client, django_assert_max_num_queries
    ):
        # Authentication and permissions (3), the event without its related rows
        # (1), the row lock (1), the write's context (1), the place (1), the
        # update (1), the answer (1), and the transaction's savepoints. No check
        # constraint covers the summary: none is evaluated (it took 44 queries).
        client = token_client("change_event")
        with django_assert_max_num_queries(12):
            response = client.patch(f"{URL}{talks.pk}/", {"summary": "Talks resumed."})
        assert response.status_code == 200
        talks.refresh_from_db()
        assert talks.summary == "Talks resumed."

    def test_a_patch_with_dates_out_of_order_changes_nothing(self, talks, token_client):
        revision = talks.revision
        response = token_client("change_event").patch(
            f"{URL}{talks.pk}/", {"date_start": "2024-04-01"}
        )
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["errors"] == [
            {"pointer": "/date_start", "detail": "Must not be after date_end.", "code": "invalid"}
        ]
        talks.refresh_from_db()
        assert (talks.date_start, talks.revision) == (D(2024, 3, 15), revision)


class TestWrites:
    def body(self, **changes) -> dict:
        source = SourceFactory(text="Russia and Armenia held talks. Russia left.")
        russia = ActorFactory(name="Russia")
        armenia = ActorFactory(name="Armenia")
        body = {
            "type": "CONSULT",
            "title": "Russia and Armenia hold talks",
            "date_end": "2023-11-09",
            "date_precision": "unknown",
            "context": ["diplomatic"],
            "participants": [
                {"actor": russia.pk, "role": "initiator"},
                {"actor": armenia.pk, "role": "target"},
            ],
            "evidence": [{"source": source.pk, "quote": "Russia and Armenia held talks"}],
        }
        return {**body, **changes}

    def test_create_stores_the_event_and_answers_its_representation(self, token_client):
        client = token_client("add_event")
        response = client.post(URL, self.body(), format="json")
        assert response.status_code == 201, response.json()
        body = response.json()
        event = Event.objects.get(pk=body["id"])
        assert response["Location"] == body["url"] == f"http://testserver{URL}{event.pk}/"
        assert body["date_display"] == "before 9 Nov 2023"
        assert [(p["actor"]["name"], p["role"]) for p in body["participants"]] == [
            ("Russia", "initiator"),
            ("Armenia", "target"),
        ]
        assert list(event.evidence.values_list("start", "end", "quote")) == [
            (0, 29, "Russia and Armenia held talks")
        ]
        assert event.vocabulary_version == "el-plover-1.0"

    def test_evidence_can_be_given_by_offsets(self, token_client):
        body = self.body()
        source_id = body["evidence"][0]["source"]
        body["evidence"] = [{"source": source_id, "start": 31, "end": 42}]
        response = token_client("add_event").post(URL, body, format="json")
        assert response.status_code == 201
        assert response.json()["evidence"][0]["quote"] == "Russia left"

    def test_validation_errors_point_at_each_field(self, token_client):
        body = self.body(type="FIGHT", date_start="2024-01-01")
        body["participants"][1]["role"] = "bystander"
        body["evidence"].append({"source": body["evidence"][0]["source"], "quote": "Russia"})
        response = token_client("add_event").post(URL, body, format="json")
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "urn:event-ledger:problem:validation-error"
        assert problem["status"] == 400
        assert {(e["pointer"], e["code"]) for e in problem["errors"]} == {
            ("/type", "invalid_choice"),
            ("/participants/1/role", "invalid_choice"),
            ("/evidence/1/quote", "invalid"),
        }
        quote_error = next(e for e in problem["errors"] if e["pointer"] == "/evidence/1/quote")
        assert "ambiguous: it occurs 2 times" in quote_error["detail"]
        assert Event.objects.count() == 0

    def test_date_order_is_checked(self, token_client):
        response = token_client("add_event").post(
            URL, self.body(date_start="2024-01-01", date_end="2023-01-01"), format="json"
        )
        assert response.status_code == 400
        assert response.json()["errors"] == [
            {"pointer": "/date_start", "detail": "Must not be after date_end.", "code": "invalid"}
        ]

    def test_model_rules_surface_as_field_errors(self, token_client):
        response = token_client("add_event").post(
            URL,
            self.body(date_start="2023-03-05", date_end="2023-12-31", date_precision="year"),
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == ""
        assert response.json()["errors"][0]["detail"] == (
            "With month or year precision, date_start must be the first day of the period."
        )
        assert Event.objects.count() == 0

    def test_an_event_needs_evidence(self, token_client):
        response = token_client("add_event").post(URL, self.body(evidence=[]), format="json")
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "/evidence"

    def test_an_actor_twice_in_one_role_is_refused(self, token_client):
        body = self.body()
        body["participants"].append(dict(body["participants"][0]))
        response = token_client("add_event").post(URL, body, format="json")
        assert response.status_code == 400
        assert response.json()["errors"][0]["pointer"] == "/participants"

    def test_patch_changes_only_the_given_fields(self, token_client, talks):
        response = token_client("change_event").patch(
            f"{URL}{talks.pk}/",
            {"title": "Talks resumed", "review_status": "reviewed"},
            format="json",
        )
        assert response.status_code == 200, response.json()
        talks.refresh_from_db()
        assert (talks.title, talks.review_status, talks.mode) == (
            "Talks resumed",
            "reviewed",
            "mediated-talks",
        )
        assert talks.participants.count() == 2 and talks.evidence.count() == 1

    def test_patch_with_participants_replaces_them(self, token_client, talks):
        mediator = ActorFactory(name="European Union", kind="igo")
        response = token_client("change_event").patch(
            f"{URL}{talks.pk}/",
            {"participants": [{"actor": mediator.pk, "role": "mediator"}]},
            format="json",
        )
        assert response.status_code == 200
        assert [(p["actor"]["name"], p["role"]) for p in response.json()["participants"]] == [
            ("European Union", "mediator")
        ]

    def test_put_replaces_the_event(self, token_client, talks):
        body = self.body(title="Replaced")
        response = token_client("change_event").put(f"{URL}{talks.pk}/", body, format="json")
        assert response.status_code == 200, response.json()["errors"]
        talks.refresh_from_db()
        assert talks.title == "Replaced" and talks.place is None and talks.mode == ""
        assert talks.evidence.get().quote == "Russia and Armenia held talks"

    def test_delete_removes_the_event_with_its_children(self, token_client, talks):
        response = token_client("delete_event").delete(f"{URL}{talks.pk}/")
        assert response.status_code == 204
        assert not Event.objects.filter(pk=talks.pk).exists()
        assert not Evidence.objects.filter(event_id=talks.pk).exists()
        assert not EventParticipant.objects.filter(event_id=talks.pk).exists()


class TestPermissions:
    def test_anonymous_clients_read(self, api, talks):
        assert api.get(URL).status_code == 200
        assert api.get(f"{URL}{talks.pk}/").status_code == 200

    def test_anonymous_writes_get_401(self, api, talks):
        for response in (
            api.post(URL, {}, format="json"),
            api.patch(f"{URL}{talks.pk}/", {"title": "x"}, format="json"),
            api.delete(f"{URL}{talks.pk}/"),
        ):
            assert response.status_code == 401
            assert response["WWW-Authenticate"] == "Token"
            assert response.json()["type"] == "urn:event-ledger:problem:not-authenticated"
        assert Event.objects.get(pk=talks.pk).title == "Talks in Brussels"

    def test_a_token_without_permission_gets_403(self, token_client, talks):
        client = token_client("add_actor", "view_event")
        for response in (
            client.post(URL, {}, format="json"),
            client.patch(f"{URL}{talks.pk}/", {"title": "x"}, format="json"),
            client.delete(f"{URL}{talks.pk}/"),
        ):
            assert response.status_code == 403
            assert response.json()["title"] == "Forbidden"
        assert Event.objects.filter(pk=talks.pk).exists()

    def test_each_write_needs_its_own_permission(self, token_client, talks):
        client = token_client("change_event")
        assert client.patch(f"{URL}{talks.pk}/", {"title": "x"}, format="json").status_code == 200
        assert client.delete(f"{URL}{talks.pk}/").status_code == 403

    def test_a_bad_token_gets_401(self, api):
        api.credentials(HTTP_AUTHORIZATION="Token not-a-token")
        response = api.get(URL)
        assert response.status_code == 401
        assert response.json()["detail"] == "Invalid token."


def test_participant_factory_keeps_event_valid(immediate_constraints):
    EventParticipantFactory()
    immediate_constraints()
