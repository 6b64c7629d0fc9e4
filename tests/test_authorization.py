"""Who may write what: every write operation against every kind of client."""

import itertools
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import ActorFactory, PlaceFactory, SourceFactory

pytestmark = pytest.mark.django_db

IDENTITIES = ["anonymous", "token_without_permission", "viewer", "curator", "admin"]
OPERATIONS = ["create", "replace", "change", "delete"]
ALLOWED = {"create": 201, "replace": 200, "change": 200, "delete": 204}
REFUSED = {"anonymous": 401, "token_without_permission": 403, "viewer": 403}


def client_for(identity: str) -> APIClient:
    client = APIClient()
    if identity == "anonymous":
        return client
    user = User.objects.create_user(identity, is_superuser=identity == "admin")
    if identity in ("viewer", "curator"):
        call_command("setup_roles", stdout=StringIO())
        user.groups.add(Group.objects.get(name=identity))
    token = Token.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_IF_MATCH="*")
    return client


def evidence(source) -> list[dict]:
    return [{"source": source.pk, "start": 0, "end": 7}]


def resource_case(resource: str) -> dict:
    """A record to change or delete, and valid bodies for each write."""
    source = SourceFactory()
    a, b = ActorFactory(kind="person"), ActorFactory()
    if resource == "actors":
        record = ActorFactory()
        body = {"slug": "new-actor", "name": "New", "kind": "group"}
        return {"record": record, "body": body, "patch": {"name": "Renamed"}}
    if resource == "places":
        record = PlaceFactory()
        body = {"slug": "new-place", "name": "New", "kind": "city"}
        return {"record": record, "body": body, "patch": {"name": "Renamed"}}
    if resource == "sources":
        record = SourceFactory()
        return {"record": record, "body": {"text": "A new text."}, "patch": {"title": "T"}}
    if resource == "events":
        from tests.factories import EventFactory

        body = {
            "type": "CONSULT",
            "title": "New",
            "date_end": "2023-11-09",
            "participants": [{"actor": a.pk, "role": "initiator"}],
            "evidence": evidence(source),
        }
        return {"record": EventFactory(), "body": body, "patch": {"title": "Renamed"}}
    if resource == "statements":
        from tests.factories import StatementFactory

        body = {
            "speaker": a.pk,
            "kind": "claim",
            "content": "New",
            "date_end": "2023-11-09",
            "evidence": evidence(source),
        }
        return {"record": StatementFactory(), "body": body, "patch": {"content": "Changed"}}
    from tests.factories import AffiliationFactory

    body = {"member": a.pk, "organization": b.pk, "role": "Envoy", "evidence": evidence(source)}
    return {"record": AffiliationFactory(), "body": body, "patch": {"role": "Minister"}}


def expected(resource: str, operation: str, identity: str) -> int:
    if identity in REFUSED:
        return REFUSED[identity]
    if resource == "sources" and operation == "delete":
        return 405  # sources are never deleted
    return ALLOWED[operation]


CASES = list(
    itertools.product(
        ["actors", "affiliations", "events", "places", "sources", "statements"],
        OPERATIONS,
        IDENTITIES,
    )
)


@pytest.mark.parametrize(("resource", "operation", "identity"), CASES)
def test_who_may_write(resource, operation, identity):
    case = resource_case(resource)
    client = client_for(identity)
    record = case["record"]
    model = type(record)
    before = model.objects.filter(pk=record.pk).values().get()
    count = model.objects.count()
    list_url, detail_url = f"/api/v1/{resource}/", f"/api/v1/{resource}/{record.pk}/"
    if operation == "create":
        response = client.post(list_url, case["body"], format="json")
    elif operation == "replace":
        response = client.put(detail_url, case["body"], format="json")
    elif operation == "change":
        response = client.patch(detail_url, case["patch"], format="json")
    else:
        response = client.delete(detail_url)
    status = expected(resource, operation, identity)
    assert response.status_code == status, response.content
    if status >= 400:
        assert response["Content-Type"] == "application/problem+json"
        assert model.objects.count() == count
        assert model.objects.filter(pk=record.pk).values().get() == before
