"""Browser clients on other origins (CORS), the API root, and URLs missing their
trailing slash."""

from pathlib import Path

import pytest
import yaml

from events.models import Place
from ledger import registry
from tests.factories import PlaceFactory
from tests.test_settings import PRINT_DB, run

pytestmark = pytest.mark.django_db

APP = "https://app.example.org"
PROBLEM = "application/problem+json"


@pytest.fixture
def allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]


def preflight(api, url: str, origin: str, method: str = "PATCH", headers: str = ""):
    return api.options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def listed(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


def cors_headers(response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    return response.json()


# CORS ---------------------------------------------------------------------------


def test_a_preflight_from_an_allowed_origin_allows_the_methods_and_headers_of_the_api(api, allowed):
    headers = "authorization, content-type, if-match, idempotency-key, x-change-reason"
    response = preflight(api, "/api/v1/events/3/", APP, "PATCH", headers)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert {"get", "post", "put", "patch", "delete"} <= listed(
        response["Access-Control-Allow-Methods"]
    )
    assert listed(headers) | {"if-none-match", "x-request-id"} <= listed(
        response["Access-Control-Allow-Headers"]
    )
    # Cookies are never sent across origins: browser apps use a token.
    assert "Access-Control-Allow-Credentials" not in response


def test_an_allowed_origin_can_read_the_etag_and_location_of_a_create(token_client, allowed):
    client = token_client("add_place")
    response = client.post(
        "/api/v1/places/", {"name": "Gyumri", "kind": "city"}, format="json", HTTP_ORIGIN=APP
    )
    assert response.status_code == 201, response.content
    assert response["Access-Control-Allow-Origin"] == APP
    exposed = listed(response["Access-Control-Expose-Headers"])
    assert {"etag", "location", "link", "retry-after", "x-request-id"} <= exposed
    assert response["Location"].endswith(f"/api/v1/places/{Place.objects.get().pk}/")
    assert response["ETag"] == '"1"'


def test_errors_are_readable_by_an_allowed_origin(api, allowed):
    response = api.get("/api/v1/nope/", HTTP_ORIGIN=APP)
    problem(response, 404)
    assert response["Access-Control-Allow-Origin"] == APP


def test_a_disallowed_origin_gets_no_cors_headers(api, allowed):
    for response in (
        preflight(api, "/api/v1/events/", "https://elsewhere.example.org", "POST"),
        api.get("/api/v1/events/", HTTP_ORIGIN="https://elsewhere.example.org"),
        api.get("/api/v1/events/", HTTP_ORIGIN="http://app.example.org"),  # not https
    ):
        assert cors_headers(response) == []


def test_by_default_no_origin_is_allowed(api):
    assert cors_headers(preflight(api, "/api/v1/events/", APP, "POST")) == []
    assert cors_headers(api.get("/api/v1/events/", HTTP_ORIGIN=APP)) == []


def test_cors_covers_only_the_api(client, allowed):
    for url in ("/healthz", "/admin/login/"):
        assert cors_headers(client.get(url, HTTP_ORIGIN=APP)) == []


def test_the_content_security_policy_stays_on_cross_origin_answers(api, allowed):
    response = api.get("/api/v1/", HTTP_ORIGIN=APP)
    assert response["Access-Control-Allow-Origin"] == APP
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    "origins", ["https://app.example.org/", "app.example.org", "https://a.example/path", "*"]
)
def test_a_malformed_allowed_origin_fails_loudly(origins):
    result = run(
        PRINT_DB,
        SECRET_KEY="k",
        DATABASE_URL="postgres://u@h/x",
        CORS_ALLOWED_ORIGINS=f"https://ok.example.org, {origins}",
    )
    assert result.returncode != 0
    assert "CORS_ALLOWED_ORIGINS must list origins" in result.stderr


def test_allowed_origins_are_read_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CORS_ALLOWED_ORIGINS)"
    )
    result = run(
        code,
        SECRET_KEY="k",
        DATABASE_URL="postgres://u@h/x",
        CORS_ALLOWED_ORIGINS="https://a.example.org, http://localhost:5173",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['https://a.example.org', 'http://localhost:5173']"


# The API root -------------------------------------------------------------------


def test_the_root_lists_every_registered_resource_with_a_working_url(api):
    response = api.get("/api/v1/")
    assert response.status_code == 200
    resources = response.json()["resources"]
    assert [r["name"] for r in resources] == registry.names()
    for resource in resources:
        assert resource["url"] == f"http://testserver/api/v1/{resource['name']}/"
        assert resource["description"].endswith(".")
        listing = api.get(resource["url"])
        assert listing.status_code == 200, (resource, listing.content)
        assert listing.json()["results"] == []
    events = next(r for r in resources if r["name"] == "events")
    assert events["description"] == (
        "Who did what to whom, when and where, as reported by its evidence."
    )


# Each request its own transaction, as served: an export sets its transaction's
# isolation, which only the first statement of a transaction may do.
@pytest.mark.django_db(transaction=True)
def test_the_root_lists_the_other_endpoints(api):
    endpoints = {e["name"]: e for e in api.get("/api/v1/").json()["endpoints"]}
    assert {
        name: endpoint["url"].removeprefix("http://testserver")
        for name, endpoint in endpoints.items()
    } == {
        "changes": "/api/v1/changes/",
        "documents": "/api/v1/documents/",
        "documents-plover": "/api/v1/documents/plover/",
        "vocabulary": "/api/v1/vocabulary/",
        "events-export": "/api/v1/events/export",
        "events-export-plover": "/api/v1/events/export/plover",
        "statements-export": "/api/v1/statements/export",
        "actors-export": "/api/v1/actors/export",
        "affiliations-export": "/api/v1/affiliations/export",
        "events-counts": "/api/v1/events/counts/",
        "statements-counts": "/api/v1/statements/counts/",
        "schema": "/api/v1/schema/",
        "docs": "/api/v1/docs/",
        "redoc": "/api/v1/redoc/",
    }
    assert all(endpoint["description"] for endpoint in endpoints.values())
    for name, endpoint in endpoints.items():
        response = api.get(endpoint["url"])
        if response.streaming:  # an export holds its slot until read and closed
            b"".join(response.streaming_content)
            response.close()
        if name in ("documents", "documents-plover"):  # sent, not read, with credentials
            assert response.status_code in (401, 405), (name, response.content)
        elif name.endswith("-counts"):  # needs `by`
            assert "by" in str(problem(response, 400)), response.content
        else:
            assert response.status_code == 200, (name, response.content)


def test_the_root_is_open_read_only_and_strict(api, token_client):
    assert api.head("/api/v1/").status_code == 200
    body = problem(api.get("/api/v1/?resources=events"), 400)
    assert body["errors"][0]["parameter"] == "resources"
    assert problem(token_client("add_event").post("/api/v1/", {}, format="json"), 405)


def test_the_root_is_in_the_schema_with_its_own_component():
    schema = yaml.safe_load(Path("openapi/v1.yaml").read_text())
    operation = schema["paths"]["/api/v1/"]["get"]
    assert operation["operationId"] == "root_retrieve"
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ApiRoot"
    }


# Trailing slashes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("/api/v1/events", "/api/v1/events/"),
        (
            "/api/v1/events?type=ASSAULT&actor=2&actor=3",
            "/api/v1/events/?type=ASSAULT&actor=2&actor=3",
        ),
        ("/api/v1/events/3", "/api/v1/events/3/"),
        ("/api/v1/actors/3/history?page_size=2", "/api/v1/actors/3/history/?page_size=2"),
        ("/api/v1", "/api/v1/"),
        ("/api/v1/docs", "/api/v1/docs/"),
    ],
)
def test_a_read_without_its_trailing_slash_is_redirected_with_its_query(api, url, location):
    for response in (api.get(url), api.head(url)):
        assert response.status_code == 301
        assert response["Location"] == f"http://testserver{location}"


def test_following_the_redirect_reaches_the_record(api):
    place = PlaceFactory()
    response = api.get(f"/api/v1/places/{place.pk}", follow=True)
    assert response.status_code == 200
    assert response.json()["id"] == place.pk
    assert response.redirect_chain == [(f"http://testserver/api/v1/places/{place.pk}/", 301)]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_write_without_its_trailing_slash_is_a_404_naming_the_url(token_client, method):
    place = PlaceFactory()
    client = token_client("add_place", "change_place", "delete_place")
    url = "/api/v1/places" if method == "post" else f"/api/v1/places/{place.pk}"
    response = getattr(client, method)(url, {"name": "Gyumri", "kind": "city"}, format="json")
    body = problem(response, 404)
    assert body["type"] == "urn:event-ledger:problem:missing-trailing-slash"
    assert body["url"] == f"http://testserver{url}/"
    assert body["detail"] == (
        f"No API resource at {url}. API URLs end with a slash: send the request to "
        f"http://testserver{url}/"
    )
    assert "Location" not in response
    assert list(Place.objects.values_list("name", flat=True)) == [place.name]


@pytest.mark.parametrize(
    "url", ["/api/v1/nope", "/api/v1/events/abc", "/api/v1/events/3/nope", "/api/v2/events"]
)
def test_unknown_urls_without_a_slash_stay_a_404(api, url):
    for response in (api.get(url), api.post(url, {}, format="json")):
        assert problem(response, 404)["type"] == "urn:event-ledger:problem:not-found"


def test_a_url_that_has_no_trailing_slash_is_not_redirected(api):
    assert api.get("/api/v1/events/export").status_code == 200
