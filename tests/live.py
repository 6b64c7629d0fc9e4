"""The real service for end-to-end tests, on a free loopback port and a database of
its own in the embedded PostgreSQL, migrated (and by default seeded, with a
superuser token): gunicorn as in production (`live_service`), or Django's
development server as `make run` starts it (`dev_server`)."""

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
    log: Path | None = None  # the server's stdout and stderr


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
    """Run the service under gunicorn until the block ends, then stop it and drop
    its database (unless EMBEDDED_POSTGRES_DIR is overridden: that server is the
    caller's)."""
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DEBUG": "0",
        "SECRET_KEY": "live-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "THROTTLE_ANON": "1000000/min",
        "THROTTLE_USER": "1000000/min",
        "THROTTLE_SEARCH": "1000000/min",
        "THROTTLE_SEARCH_USER": "1000000/min",
        **overrides,
    }
    with _served(
        env,
        log_dir / "server.log",
        seed=seed,
        superuser=superuser,
        own_postgres="EMBEDDED_POSTGRES_DIR" in overrides,
        command=lambda port: [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ],
    ) as service:
        yield service


@contextlib.contextmanager
def dev_server(log_dir: Path, *, superuser: bool = True) -> Iterator[Service]:
    """Run Django's development server the way `make run` does until the block
    ends: the environment the Makefile's `run` target gives it (DEBUG=1 and
    nothing else: no SECRET_KEY, no ALLOWED_HOSTS, default throttles), `migrate`,
    `seed`, then `runserver` (on a free port, without the autoreloader, which
    would fork a child this helper could not stop)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "SECRET_KEY", "ALLOWED_HOSTS"}
        and not k.startswith("THROTTLE_")
    }
    # So that the log is complete when the server is stopped.
    env.update(DEBUG="1", PYTHONUNBUFFERED="1")
    with _served(
        env,
        log_dir / "server.log",
        seed=True,
        superuser=superuser,
        own_postgres=False,
        command=lambda port: [
            sys.executable,
            "manage.py",
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
        ],
    ) as service:
        yield service


@contextlib.contextmanager
def _served(
    env: dict,
    log: Path,
    *,
    seed: bool,
    superuser: bool,
    own_postgres: bool,
    command,
) -> Iterator[Service]:
    """Migrate (and seed, and make a superuser token on) a database of its own,
    start `command(port)` on a free port, wait until /healthz answers, and drop
    the database when the block ends (unless the PostgreSQL server is the
    caller's own)."""
    database = f"eventledger_live_{os.getpid()}_{free_port()}"
    env = {
        **env,
        "EMBEDDED_DB_NAME": database,
        "DJANGO_SUPERUSER_PASSWORD": "live-password-1",
    }
    try:
        manage("migrate", "--noinput", env=env)
        if seed:
            manage("seed", env=env)
        token = None
        if superuser:
            manage(
                "createsuperuser", "--noinput", "--username", "live", "--email", "l@x.org", env=env
            )
            token = manage("drf_create_token", "live", env=env).split()[2]
        port = free_port()
        with log.open("w") as output:
            server = subprocess.Popen(
                command(port), cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
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
            yield Service(url=base, token=token, env=env, log=log)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        if not own_postgres:
            with embedded_admin_connection() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
