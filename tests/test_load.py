"""A bounded mixed read/write load over loopback: `make load` (CI runs it).

8 clients for LOAD_SECONDS (default 60) against gunicorn: reads, creates and
conditional updates. It must end with no 5xx, and every acknowledged write must
be in the database and in its record's history.
"""

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.test_sdk import embedded_admin_connection, free_port, manage

CLIENTS = 8
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif("DATABASE_URL" in os.environ, reason="runs on the embedded server"),
]


def call(method, url, body=None, headers=None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data=data, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def test_mixed_load_loses_no_acknowledged_write(tmp_path):
    import subprocess

    from tests.test_sdk import BIN, ROOT

    database = f"eventledger_load_{os.getpid()}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DEBUG": "0",
        "SECRET_KEY": "load-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMBEDDED_DB_NAME": database,
        "THROTTLE_ANON": "1000000/min",
        "THROTTLE_USER": "1000000/min",
        "DJANGO_SUPERUSER_PASSWORD": "load-password-1",
    }
    manage("migrate", "--noinput", env=env)
    manage("seed", env=env)
    manage("createsuperuser", "--noinput", "--username", "load", "--email", "l@x.org", env=env)
    token = manage("drf_create_token", "load", env=env).split()[2]
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    with (tmp_path / "server.log").open("w") as output:
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "4",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    auth = {"Authorization": f"Token {token}"}
    statuses: list[int] = []
    acknowledged: dict[int, dict] = {}  # actor id -> {"name": last acknowledged, "writes": n}
    lock = threading.Lock()
    try:
        for _ in range(100):
            try:
                if call("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        deadline = time.monotonic() + SECONDS

        def client(number: int) -> None:
            rng = random.Random(number)
            mine: dict[int, int] = {}  # actor id -> revision this client last saw
            step = 0
            while time.monotonic() < deadline:
                step += 1
                roll = rng.random()
                if roll < 0.6 or (not mine and roll < 0.8):
                    url = rng.choice(
                        [
                            f"{base}/events/?page_size=50",
                            f"{base}/events/?q=Russia",
                            f"{base}/actors/?kind=country",
                            f"{base}/statements/",
                            f"{base}/changes/?page_size=100",
                        ]
                    )
                    status, _, _ = call("GET", url)
                elif roll < 0.8 or not mine:
                    slug = f"load-{number}-{step}"
                    status, _, body = call(
                        "POST",
                        f"{base}/actors/",
                        {"slug": slug, "name": slug, "kind": "group"},
                        auth,
                    )
                    if status == 201:
                        mine[body["id"]] = body["revision"]
                        with lock:
                            acknowledged[body["id"]] = {"name": slug, "writes": 1}
                else:
                    actor_id = rng.choice(list(mine))
                    name = f"renamed-{number}-{step}"
                    status, _, body = call(
                        "PATCH",
                        f"{base}/actors/{actor_id}/",
                        {"name": name},
                        {**auth, "If-Match": f'"{mine[actor_id]}"'},
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

        server_errors = [s for s in statuses if s >= 500]
        assert server_errors == []
        assert acknowledged, {s: statuses.count(s) for s in set(statuses)}
        for actor_id, expected in acknowledged.items():
            status, _, actor = call("GET", f"{base}/actors/{actor_id}/")
            assert status == 200 and actor["name"] == expected["name"]
            history = call("GET", f"{base}/actors/{actor_id}/history/")[2]["results"]
            assert len(history) == expected["writes"] == actor["revision"]
        writes = sum(a["writes"] for a in acknowledged.values())
        print(
            f"\n{len(statuses)} requests in {elapsed:.0f} s ({len(statuses) / elapsed:.0f}/s) by "
            f"{CLIENTS} clients; {writes} acknowledged writes to {len(acknowledged)} actors, all "
            f"present with their history; status counts: "
            f"{ {s: statuses.count(s) for s in sorted(set(statuses))} }"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        with embedded_admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
