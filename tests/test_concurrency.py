"""Conditional writes under contention: the check and the write are one step."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from actors.models import Actor
from tests.factories import ActorFactory

THREADS = 8
UPDATES_PER_THREAD = 25


@pytest.mark.django_db(transaction=True)
def test_concurrent_conditional_patches_each_apply_exactly_once(token_client, settings):
    # Thousands of requests in seconds: lift the throttle, which has tests of its own.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min"},
    }
    actor = ActorFactory(description="")
    url = f"/api/v1/actors/{actor.pk}/"
    token = token_client("change_actor", if_match=None)._credentials["HTTP_AUTHORIZATION"]
    statuses: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(number: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token)
        try:
            for step in range(UPDATES_PER_THREAD):
                marker = f"[{number}:{step}]"
                while True:  # read, change, write; on 412 read again
                    current = client.get(url)
                    assert current.status_code == 200, (current.status_code, current.content[:300])
                    response = client.patch(
                        url,
                        {"description": current.json()["description"] + marker},
                        format="json",
                        HTTP_IF_MATCH=current["ETag"],
                    )
                    with lock:
                        statuses.append(response.status_code)
                    if response.status_code != 412:
                        break
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not errors, errors
    assert not any(status >= 500 for status in statuses)
    assert set(statuses) <= {200, 412}
    total = THREADS * UPDATES_PER_THREAD
    assert statuses.count(200) == total
    stored = Actor.objects.get(pk=actor.pk)
    markers = [f"[{n}:{s}]" for n in range(THREADS) for s in range(UPDATES_PER_THREAD)]
    assert all(stored.description.count(marker) == 1 for marker in markers)
    assert len(stored.description) == sum(len(m) for m in markers)
    assert stored.revision == 1 + total
    print(f"{total} updates applied once each; {statuses.count(412)} stale writes refused")


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_one_document_store_it_once(token_client, settings):
    """The same text posted by several clients at once: one stores it, every
    other gets a 400 problem at /text, and nothing is half-written."""
    from events.models import Event
    from sources.models import Source
    from tests.events.test_api_documents import CURATOR, border_talks

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min"},
    }
    for key in ("armenia", "azerbaijan", "european-union", "nikol-pashinyan"):
        ActorFactory(slug=key, name=key.replace("-", " ").title())
    body = border_talks()
    for actor in body["annotation"]["actors"]:
        actor.pop("identifiers", None)  # the factory's actors hold none
        actor.pop("kind", None), actor.pop("country", None)
    token = token_client(*CURATOR)._credentials["HTTP_AUTHORIZATION"]
    barrier = threading.Barrier(4)
    responses: list = []
    errors: list[BaseException] = []

    def worker() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token)
        try:
            barrier.wait(timeout=30)
            responses.append(client.post("/api/v1/documents/", body, format="json"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 400, 400, 400], [r.content[:300] for r in responses]
    for response in responses:
        if response.status_code == 400:
            pointers = {error["pointer"] for error in response.json()["errors"]}
            assert pointers == {"/text"}, response.json()
            assert "stored as source" in response.json()["errors"][0]["detail"]
    assert Source.objects.filter(sha256=Source.digest(body["text"])).count() == 1
    assert Event.objects.count() == 1
