import datetime

import pytest
from django.utils import timezone

from actors.models import Actor
from ledger.models import IdempotencyKey

pytestmark = pytest.mark.django_db

URL = "/api/v1/actors/"
BODY = {"slug": "georgia", "name": "Georgia", "kind": "country", "country": "GEO"}


@pytest.fixture
def writer(token_client):
    return token_client("add_actor")


def test_the_same_key_and_body_return_the_original_response_and_create_once(writer):
    first = writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="create-georgia-1")
    again = writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="create-georgia-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert Actor.objects.filter(slug="georgia").count() == 1


def test_the_same_key_with_another_body_gets_422(writer):
    writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = writer.post(
        URL, {**BODY, "slug": "georgia-2"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:event-ledger:problem:idempotency-key-reused"
    assert not Actor.objects.filter(slug="georgia-2").exists()


def test_a_duplicate_while_the_first_is_running_gets_409(writer, django_user_model):
    # The first request has claimed the key and not finished.
    writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    IdempotencyKey.objects.filter(key="k2").update(state=IdempotencyKey.IN_PROGRESS)
    response = writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert response.status_code == 409
    assert response.json()["type"] == "urn:event-ledger:problem:idempotency-key-in-use"
    assert Actor.objects.filter(slug="georgia").count() == 1


def test_an_error_answer_is_replayed_too(writer):
    bad = {**BODY, "country": "Georgia"}
    first = writer.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="k3")
    again = writer.post(URL, bad, format="json", HTTP_IDEMPOTENCY_KEY="k3")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()
    assert again["Content-Type"] == "application/problem+json"


def test_keys_expire(writer, settings):
    writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k4")
    IdempotencyKey.objects.filter(key="k4").update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = writer.post(
        URL, {**BODY, "slug": "georgia-2"}, format="json", HTTP_IDEMPOTENCY_KEY="k4"
    )
    assert response.status_code == 201  # a new request, not a reuse
    assert settings.IDEMPOTENCY_KEY_TTL_HOURS == 24


def test_keys_belong_to_one_client(writer, token_client):
    other = token_client("add_actor")
    writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = other.post(
        URL, {**BODY, "slug": "georgia-2"}, format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )
    assert response.status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 201, "has space", "naïve"])
def test_a_malformed_key_is_refused(writer, key):
    response = writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert response.json()["errors"][0]["header"] == "Idempotency-Key"
    assert not Actor.objects.filter(slug="georgia").exists()


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_gets_409_and_one_record_is_made(token_client, monkeypatch):
    import threading
    import time

    from django.db import connection

    from actors.views import ActorViewSet

    writer = token_client("add_actor")
    credentials = writer._credentials
    original = ActorViewSet.perform_service_create
    first_started = threading.Event()

    def slow_create(self, data):
        first_started.set()
        time.sleep(1.0)  # the first request is still running when the duplicate arrives
        return original(self, data)

    monkeypatch.setattr(ActorViewSet, "perform_service_create", slow_create)
    results: dict[str, int] = {}

    def post(name: str) -> None:
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(**credentials)
        try:
            response = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="race")
            results[name] = response.status_code
        finally:
            connection.close()

    first = threading.Thread(target=post, args=("first",))
    first.start()
    assert first_started.wait(timeout=30)
    second = threading.Thread(target=post, args=("second",))
    second.start()
    first.join(timeout=60)
    second.join(timeout=60)
    assert results == {"first": 201, "second": 409}
    assert Actor.objects.filter(slug="georgia").count() == 1
    replay = writer.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="race")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
