"""Every error under /api/ is an RFC 9457 problem document."""

import json

import pytest
from django.db import connection, transaction
from rest_framework.settings import api_settings

from events.models import Event
from events.views import EventViewSet

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


@pytest.mark.smoke
def test_unknown_urls_answer_404_whatever_the_method(api):
    for response in (api.get("/api/v1/nope/"), api.post("/api/v2/events/", {}, format="json")):
        body = problem(response, 404)
        assert body["type"] == "urn:event-ledger:problem:not-found"
    html = api.get("/api/v1/nope/", HTTP_ACCEPT="text/html")
    assert problem(html, 404)["title"] == "Not Found"


def test_a_method_not_allowed_answers_405_with_allow(token_client):
    response = token_client("delete_event").delete("/api/v1/events/")
    body = problem(response, 405)
    assert body["detail"] == 'Method "DELETE" not allowed.'
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_a_non_json_body_answers_415(token_client):
    client = token_client("add_event")
    response = client.post("/api/v1/events/", "type=CONSULT", content_type="text/plain")
    assert problem(response, 415)["type"] == "urn:event-ledger:problem:unsupported-media-type"
    form = client.post("/api/v1/events/", {"type": "CONSULT"}, format="multipart")
    problem(form, 415)


def test_malformed_json_answers_400(token_client):
    response = token_client("add_event").post(
        "/api/v1/events/", "{not json", content_type="application/json"
    )
    assert problem(response, 400)["type"] == "urn:event-ledger:problem:parse-error"


def test_nul_characters_in_the_body_answer_400(token_client):
    response = token_client("add_actor").post(
        "/api/v1/actors/",
        json.dumps({"slug": "x", "name": "Bad\u0000name", "kind": "group"}),
        content_type="application/json",
    )
    assert "NUL" in problem(response, 400)["detail"]


def test_nul_characters_in_the_query_answer_400(api):
    body = problem(api.get("/api/v1/actors/?q=a%00b"), 400)
    assert body["type"] == "urn:event-ledger:problem:nul-character"


def test_a_body_over_the_cap_answers_413(token_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = token_client("add_actor").post(
        "/api/v1/actors/", {"slug": "x", "name": "x" * 200, "kind": "group"}, format="json"
    )
    body = problem(response, 413)
    assert body["detail"].endswith("the limit is 100.")


def test_throttled_clients_get_429_with_retry_after(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/min", "user": "5/min"},
    }
    assert api_settings.DEFAULT_THROTTLE_RATES["anon"] == "2/min"
    assert api.get("/api/v1/events/").status_code == 200
    assert api.get("/api/v1/events/").status_code == 200
    response = api.get("/api/v1/events/")
    body = problem(response, 429)
    assert body["type"] == "urn:event-ledger:problem:throttled"
    assert 0 < int(response["Retry-After"]) <= 60
    assert body["retry_after"] == int(response["Retry-After"])


def test_authenticated_clients_have_their_own_rate(token_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "1/min", "user": "3/min"},
    }
    client = token_client()
    assert [client.get("/api/v1/events/").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_an_unexpected_error_answers_500_without_details(api, monkeypatch):
    def broken(self, request, *args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(EventViewSet, "list", broken)
    response = api.get("/api/v1/events/")
    body = problem(response, 500)
    assert "secret" not in response.content.decode()
    assert body["title"] == "Internal Server Error"


def test_api_queries_run_under_a_statement_timeout():
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "15s"


def test_a_query_over_the_timeout_answers_503(api, monkeypatch):
    original = EventViewSet.get_queryset

    def slow(self):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = '20ms'")
            cursor.execute("SELECT pg_sleep(1)")
        return original(self)

    monkeypatch.setattr(EventViewSet, "get_queryset", slow)
    body = problem(api.get("/api/v1/events/"), 503)
    assert body["detail"] == "The query took too long and was cancelled; narrow it down."


def test_a_failed_write_leaves_nothing_behind(token_client):
    # The participant's actor does not exist: nothing of the event may be stored.
    response = token_client("add_event").post(
        "/api/v1/events/",
        {
            "type": "CONSULT",
            "title": "x",
            "date_end": "2023-01-01",
            "participants": [{"actor": 999999, "role": "target"}],
            "evidence": [{"source": 999999, "start": 0, "end": 1}],
        },
        format="json",
    )
    body = problem(response, 400)
    assert {e["pointer"] for e in body["errors"]} == {
        "/participants/0/actor",
        "/evidence/0/source",
    }
    assert Event.objects.count() == 0


@pytest.mark.smoke
def test_health_endpoints(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize("segment", ["null", "null,null", "1.5", "-1", "abc"])
def test_a_non_numeric_id_is_an_unknown_url(api, segment):
    for resource in ("events", "actors", "sources"):
        for query in ({}, {"as_of": "2024-01-01T00:00:00Z"}):
            body = problem(api.get(f"/api/v1/{resource}/{segment}/", query), 404)
            assert body["type"] == "urn:event-ledger:problem:not-found"
        assert problem(api.get(f"/api/v1/{resource}/{segment}/history/"), 404)


def test_a_csrf_refusal_under_the_api_is_a_problem(client, admin_user):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_user)
    body = problem(csrf_client.post("/api/v2/whatever/", {}), 404)  # unknown URLs: no CSRF
    assert body["title"] == "Not Found"
    refused = csrf_client.post("/api/v1/actors/", {}, content_type="application/json")
    assert problem(refused, 403)["detail"].startswith("CSRF Failed")


@pytest.mark.parametrize("url", ["/api/v1/events/", "/admin/login/", "/api/v1/docs/", "/healthz"])
def test_security_headers_are_set(client, url):
    response = client.get(url)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize(
    "query", ["date_before=", "actor=", "type=", "status=", "ordering=", "page_size="]
)
def test_an_empty_typed_parameter_is_refused(api, query):
    name = query.rstrip("=")
    body = problem(api.get(f"/api/v1/events/?{query}"), 400)
    assert body["errors"][0]["parameter"] == name


def test_an_empty_text_search_is_no_filter(api):
    assert api.get("/api/v1/events/?q=").status_code == 200


def test_a_cache_outage_does_not_fail_requests(api, monkeypatch):
    from ledger.api.throttling import AnonThrottle

    class DownCache:
        def get(self, *args, **kwargs):
            raise ConnectionError("the cache is down")

        set = get

    monkeypatch.setattr(AnonThrottle, "cache", DownCache())
    assert api.get("/api/v1/events/").status_code == 200
