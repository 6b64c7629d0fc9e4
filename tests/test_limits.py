"""Throttles count across every server process when a shared cache is set."""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.test_sdk import BIN, ROOT, free_port, manage

REDIS = ("127.0.0.1", 6379)


def redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.skipif("DATABASE_URL" in os.environ, reason="runs on the embedded server")
@pytest.mark.skipif(not redis_answers(), reason="no Redis on 127.0.0.1:6379 to share counters")
def test_throttles_count_across_all_server_processes(tmp_path):
    database = f"eventledger_limits_{os.getpid()}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DEBUG": "0",
        "SECRET_KEY": "limits-test-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMBEDDED_DB_NAME": database,
        "THROTTLE_ANON": "12/min",
        "CACHE_URL": "redis://127.0.0.1:6379/15",
        "CONN_MAX_AGE": "0",
    }
    manage("migrate", "--noinput", env=env)
    port = free_port()
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
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if status_of(f"{base}/healthz") == 200:
                    break
            except OSError:
                time.sleep(0.2)
        # Clear this test's counters, then spend the budget of 12 across 4 workers.
        subprocess.run(
            [str(BIN / "python"), "-c", "import redis; redis.Redis(db=15).flushdb()"], check=True
        )
        statuses = [status_of(f"{base}/api/v1/places/") for _ in range(16)]
        assert statuses.count(200) == 12, statuses
        assert statuses[12:] == [429] * 4
    finally:
        server.terminate()
        server.wait(timeout=30)
        manage("shell", "-c", "", env=env)  # keep the embedded server up for the drop
        import psycopg
        from django.conf import settings

        with psycopg.connect(
            host=str(settings.EMBEDDED_POSTGRES_DIR),
            user="postgres",
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
