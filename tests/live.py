"""The real service for end-to-end tests: gunicorn on a free loopback port, on a
database of its own in the embedded PostgreSQL, migrated (and by default seeded,
with a superuser token)."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Service:
    url: str  # e.g. http://127.0.0.1:8123
    token: str | None
    env: dict


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(*args: str, env: dict) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def call(method: str, url: str, body=None, headers: dict | None = None):
    """An HTTP request: (status, headers, parsed JSON body or None)."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data=data, timeout=30) as response:
            return response.status, dict(response.headers), _json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), _json(error.read())


def _json(raw: bytes):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def embedded_admin_connection(data_dir: Path | None = None):
    return psycopg.connect(
        host=str(data_dir or settings.EMBEDDED_POSTGRES_DIR),
        user="postgres",
        dbname="postgres",
        autocommit=True,
    )


@contextlib.contextmanager
def live_service(
    log_dir: Path,
    *,
    workers: int = 2,
    seed: bool = True,
    superuser: bool = True,
    **overrides: str,
) -> Iterator[Service]:
    """Run the service until the block ends, then stop it and drop its database
    (unless EMBEDDED_POSTGRES_DIR is overridden: that server is the caller's)."""
    database = f"eventledger_live_{os.getpid()}_{free_port()}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DEBUG": "0",
        "SECRET_KEY": "live-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMBEDDED_DB_NAME": database,
        "THROTTLE_ANON": "1000000/min",
        "THROTTLE_USER": "1000000/min",
        "DJANGO_SUPERUSER_PASSWORD": "live-password-1",
        **overrides,
    }
    manage("migrate", "--noinput", env=env)
    if seed:
        manage("seed", env=env)
    token = None
    if superuser:
        manage("createsuperuser", "--noinput", "--username", "live", "--email", "l@x.org", env=env)
        token = manage("drf_create_token", "live", env=env).split()[2]
    port = free_port()
    log = log_dir / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call("GET", f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise AssertionError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield Service(url=base, token=token, env=env)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if "EMBEDDED_POSTGRES_DIR" not in overrides:
            with embedded_admin_connection() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
