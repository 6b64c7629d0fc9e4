"""PostgreSQL restarts while the service serves requests."""

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.test_sdk import BIN, ROOT, free_port, manage

pytestmark = pytest.mark.skipif(
    "DATABASE_URL" in os.environ, reason="the fault test restarts its own embedded server"
)


def call(method: str, url: str, body: dict | None = None, token: str | None = None):
    request = urllib.request.Request(url, method=method)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, data=data, timeout=15) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def pg_ctl(data_dir: Path, *args: str) -> None:
    import pgserver

    pg_ctl_path = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    command = [str(pg_ctl_path), "-D", str(data_dir), "-w", *args]
    if os.geteuid() == 0:  # the embedded server runs as its own user when we are root
        command = ["runuser", "-u", "pgserver", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def test_requests_after_a_database_restart_succeed_and_during_it_get_503(tmp_path):
    data_dir = tmp_path / "pg"
    data_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(tmp_path, "pgserver")
        os.chmod(tmp_path, 0o777)
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DEBUG": "0",
        "SECRET_KEY": "fault-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMBEDDED_POSTGRES_DIR": str(data_dir),
        "THROTTLE_ANON": "100000/min",
        "THROTTLE_USER": "100000/min",
        "DJANGO_SUPERUSER_PASSWORD": "fault-password-1",
    }
    manage("migrate", "--noinput", env=env)
    manage("seed", env=env)
    manage("createsuperuser", "--noinput", "--username", "ops", "--email", "o@x.org", env=env)
    token = manage("drf_create_token", "ops", env=env).split()[2]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(100):
            try:
                if call("GET", f"{base}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        for _ in range(4):  # every worker holds a database connection now
            assert call("GET", f"{base}/api/v1/events/")[0] == 200

        pg_ctl(data_dir, "-m", "fast", "stop")
        outage = [
            call("GET", f"{base}/api/v1/events/"),
            call("GET", f"{base}/api/v1/actors/1/"),
            call(
                "POST", f"{base}/api/v1/actors/", {"slug": "x", "name": "X", "kind": "group"}, token
            ),
            call("GET", f"{base}/readyz"),
        ]
        for status, content_type, body in outage:
            assert status == 503, (status, body[:300])
            assert content_type == "application/problem+json"
            assert json.loads(body)["status"] == 503
        assert call("GET", f"{base}/healthz")[0] == 200  # the process itself is fine

        pg_ctl(data_dir, "-o", f'-h "" -k {data_dir}', "-l", str(tmp_path / "pg.log"), "start")
        after = [call("GET", f"{base}/api/v1/events/") for _ in range(4)]
        assert [status for status, _, _ in after] == [200] * 4
        created = call(
            "POST", f"{base}/api/v1/actors/", {"slug": "y", "name": "Y", "kind": "group"}, token
        )
        assert created[0] == 201
        # The write refused during the outage left nothing behind.
        slugs = [
            a["slug"] for a in json.loads(call("GET", f"{base}/api/v1/actors/?q=X")[2])["results"]
        ]
        assert "x" not in slugs
    finally:
        server.terminate()
        server.wait(timeout=30)
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl(data_dir, "-m", "fast", "stop")
