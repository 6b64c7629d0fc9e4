import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "openapi" / "v1.yaml"


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(COMMITTED.read_text())


def test_the_committed_schema_matches_the_code(tmp_path):
    generated = tmp_path / "v1.yaml"
    # --fail-on-warn exits non-zero on any warning, failing this test.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(generated))
    assert generated.read_text() == COMMITTED.read_text(), (
        "openapi/v1.yaml is out of date: run `make schema` and commit the result."
    )


@pytest.mark.django_db
def test_the_schema_is_served(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
    assert "/api/v1/events/" in response.json()["paths"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_pages_use_only_local_assets(client, url):
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets, "the page loads its viewer"
    assert all(not a.startswith(("http:", "https:", "//")) for a in assets), assets
    assert any("drf_spectacular_sidecar" in a for a in assets)


def test_every_operation_has_a_summary_description_and_stable_id(schema):
    operation_ids = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary"), (method, path)
            assert operation.get("description"), (method, path)
            operation_ids.append(operation["operationId"])
    assert len(operation_ids) == len(set(operation_ids))
    assert {"events_list", "events_create", "events_partial_update", "actors_retrieve"} <= set(
        operation_ids
    )


def test_errors_share_the_problem_component(schema):
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    create = schema["paths"]["/api/v1/events/"]["post"]
    for status in ("400", "401", "403", "415", "429", "500"):
        assert create["responses"][status]["content"]["application/problem+json"]["schema"] == (
            problem_ref
        )
    assert "errors" in schema["components"]["schemas"]["Problem"]["properties"]


def test_enums_have_readable_names(schema):
    names = set(schema["components"]["schemas"])
    assert {
        "EventTypeEnum",
        "ActorKindEnum",
        "PlaceKindEnum",
        "StatementKindEnum",
        "ParticipantRoleEnum",
        "DatePrecisionEnum",
    } <= names
    assert not any(re.fullmatch(r"[A-Za-z]+[0-9a-f]{3}Enum", name) for name in names)


def test_writes_accept_json_only(schema):
    for item in schema["paths"].values():
        for operation in item.values():
            if "requestBody" in operation:
                assert list(operation["requestBody"]["content"]) == ["application/json"]


def test_main_resources_have_request_examples(schema):
    for name in ("EventWriteRequest", "ActorWriteRequest", "StatementWriteRequest"):
        path = (
            "/api/v1/"
            + {
                "EventWriteRequest": "events",
                "ActorWriteRequest": "actors",
                "StatementWriteRequest": "statements",
            }[name]
            + "/"
        )
        content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert content.get("examples"), name
