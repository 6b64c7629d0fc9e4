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
