"""Settings are read at start-up, so each case runs Django in a fresh process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRINT_DB = (
    "import django; django.setup(); from django.conf import settings; "
    "d = settings.DATABASES['default']; print(d['HOST'], d['PORT'], d['NAME'], d['USER'])"
)
PING_DB = (
    "import django; django.setup(); from django.db import connection; "
    "connection.ensure_connection(); print(connection.cursor().connection.info.host)"
)


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS"}
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_secret_key_and_debug_off_the_service_refuses_to_start():
    result = run(PRINT_DB, DEBUG="0", DATABASE_URL="postgres://u@db.example:5432/x")
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_debug_on_allows_a_development_key():
    result = run(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DEBUG, settings.SECRET_KEY.startswith('insecure'))",
        DEBUG="1",
        DATABASE_URL="postgres://u@db.example:5432/x",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


def test_a_bad_boolean_fails_loudly():
    result = run(PRINT_DB, DEBUG="maybe", SECRET_KEY="k", DATABASE_URL="postgres://u@h/x")
    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


def test_database_url_is_used_when_set():
    result = run(PRINT_DB, SECRET_KEY="k", DATABASE_URL="postgres://ledger@db.example:6543/ledger")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["db.example", "6543", "ledger", "ledger"]


def test_only_postgresql_is_accepted():
    result = run(PRINT_DB, SECRET_KEY="k", DATABASE_URL="sqlite:///db.sqlite3")
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


@pytest.mark.skipif("DATABASE_URL" in os.environ, reason="the suite runs on an external server")
def test_without_database_url_the_embedded_server_is_started_and_used(tmp_path):
    data_dir = tmp_path / "pg"
    result = run(PING_DB, SECRET_KEY="k", EMBEDDED_POSTGRES_DIR=str(data_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(data_dir.resolve())
    assert (data_dir / "PG_VERSION").exists()
    # Its data persists: a second start finds the database it created.
    again = run(PING_DB, SECRET_KEY="k", EMBEDDED_POSTGRES_DIR=str(data_dir))
    assert again.returncode == 0, again.stderr
