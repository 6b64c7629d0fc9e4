"""A bounded mixed read/write load over loopback: `make load` (CI runs it).

8 clients for LOAD_SECONDS (default 60) against gunicorn: reads, creates and
conditional updates. It must end with no 5xx, and every acknowledged write must
be in the database and in its record's history.
"""

import os
import random
import threading
import time

import pytest

from tests.live import call, live_service

CLIENTS = 8
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif("DATABASE_URL" in os.environ, reason="runs on the embedded server"),
]


def test_mixed_load_loses_no_acknowledged_write(tmp_path):
    with live_service(tmp_path, workers=4) as service:
        run_load(f"{service.url}/api/v1", service.token)


def run_load(base: str, token: str) -> None:
    auth = {"Authorization": f"Token {token}"}
    statuses: list[int] = []
    acknowledged: dict[int, dict] = {}  # actor id -> {"name": last acknowledged, "writes": n}
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS
    reads = [
        f"{base}/events/?page_size=50",
        f"{base}/events/?q=Russia",
        f"{base}/actors/?kind=country",
        f"{base}/statements/",
        f"{base}/changes/?page_size=100",
    ]

    def client(number: int) -> None:
        rng = random.Random(number)
        mine: dict[int, int] = {}  # actor id -> revision this client last saw
        step = 0
        while time.monotonic() < deadline:
            step += 1
            roll = rng.random()
            if roll < 0.6:
                status = call("GET", rng.choice(reads))[0]
            elif roll < 0.8 or not mine:
                slug = f"load-{number}-{step}"
                body = {"slug": slug, "name": slug, "kind": "group"}
                status, _, body = call("POST", f"{base}/actors/", body, auth)
                if status == 201:
                    mine[body["id"]] = body["revision"]
                    with lock:
                        acknowledged[body["id"]] = {"name": slug, "writes": 1}
            else:
                actor_id = rng.choice(list(mine))
                name = f"renamed-{number}-{step}"
                headers = {**auth, "If-Match": f'"{mine[actor_id]}"'}
                status, _, body = call(
                    "PATCH", f"{base}/actors/{actor_id}/", {"name": name}, headers
                )
                if status == 200:
                    mine[actor_id] = body["revision"]
                    with lock:
                        acknowledged[actor_id]["name"] = name
                        acknowledged[actor_id]["writes"] += 1
                elif status == 412:
                    mine[actor_id] = call("GET", f"{base}/actors/{actor_id}/")[2]["revision"]
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert [s for s in statuses if s >= 500] == []
    assert acknowledged, {s: statuses.count(s) for s in set(statuses)}
    for actor_id, expected in acknowledged.items():
        status, _, actor = call("GET", f"{base}/actors/{actor_id}/")
        assert status == 200 and actor["name"] == expected["name"]
        history = call("GET", f"{base}/actors/{actor_id}/history/")[2]["results"]
        assert len(history) == expected["writes"] == actor["revision"]
    writes = sum(a["writes"] for a in acknowledged.values())
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(
        f"\n{len(statuses)} requests in {elapsed:.0f} s ({len(statuses) / elapsed:.0f}/s) by "
        f"{CLIENTS} clients; {writes} acknowledged writes to {len(acknowledged)} actors, all "
        f"present with their history; status counts: {counts}"
    )
