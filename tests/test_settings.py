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
        if k
        not in {"DEBUG", "SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "NUM_PROXIES", "ADMIN_URL"}
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


def documented_value(path: str, name: str) -> str:
    for line in (ROOT / path).read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.partition("=")[2]
    raise AssertionError(f"{path} sets no {name}")


PRINT_KEY = (
    "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
)


@pytest.mark.parametrize(
    "key",
    [
        documented_value("docs/production.env", "SECRET_KEY"),
        # What docs/production.env said before its placeholder began "change-me".
        "replace-with-50-random-characters-from-secrets.token_urlsafe-a1b2c3d4e5",
        "change-me",
        "django-insecure-3x@mple+k3y-from-startproject-0123456789abcdefghijklmnop",
        "insecure-development-key-do-not-use-in-production",
    ],
)
def test_with_debug_off_a_published_secret_key_is_refused(key):
    result = run(PRINT_KEY, DEBUG="0", SECRET_KEY=key, DATABASE_URL="postgres://u@h/x")
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is a published placeholder" in result.stderr
    assert key not in result.stderr  # the message names the variable, not its value


def test_the_example_environment_leaves_the_secret_key_to_be_set():
    assert documented_value(".env.example", "SECRET_KEY") == ""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "SECRET_KEY: ${SECRET_KEY:?" in compose  # no default: compose refuses to start


@pytest.mark.parametrize(
    "key", ["insecure-test-only-key", "insecure-ci-only-key", "live-test-only", "collectstatic"]
)
def test_the_keys_of_tests_ci_and_the_image_build_are_accepted(key):
    result = run(PRINT_KEY, DEBUG="0", SECRET_KEY=key, DATABASE_URL="postgres://u@h/x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key


def test_with_debug_on_a_placeholder_key_is_allowed():
    result = run(PRINT_KEY, DEBUG="1", SECRET_KEY="change-me", DATABASE_URL="postgres://u@h/x")
    assert result.returncode == 0, result.stderr


PRINT_PROXIES = (
    "import django; django.setup(); from rest_framework.settings import api_settings; "
    "print(api_settings.NUM_PROXIES)"
)


def test_x_forwarded_for_is_ignored_unless_proxies_are_configured():
    env = {"SECRET_KEY": "k", "DATABASE_URL": "postgres://u@h/x"}
    result = run(PRINT_PROXIES, **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
    behind_one = run(PRINT_PROXIES, **env, NUM_PROXIES="1")
    assert behind_one.stdout.strip() == "1", behind_one.stderr
    negative = run(PRINT_PROXIES, **env, NUM_PROXIES="-1")
    assert "NUM_PROXIES must be 0 or more" in negative.stderr


def test_the_login_lockout_is_configured_from_the_environment():
    result = run(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME.total_seconds())",
        SECRET_KEY="k",
        DATABASE_URL="postgres://u@h/x",
        LOGIN_FAILURE_LIMIT="3",
        LOGIN_LOCKOUT_MINUTES="60",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3600.0"]


RESOLVE_ADMIN = (
    "import django; django.setup(); from django.urls import resolve, Resolver404\n"
    "print(resolve('/curation-4f2a/login/').url_name)\n"
    "try:\n    resolve('/admin/login/')\nexcept Resolver404:\n    print('no /admin/')"
)


def test_admin_url_moves_the_admin():
    result = run(
        RESOLVE_ADMIN, SECRET_KEY="k", DATABASE_URL="postgres://u@h/x", ADMIN_URL="curation-4f2a/"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["login", "no /admin/"]


@pytest.mark.parametrize("value", ["/admin/", "admin", ""])
def test_a_malformed_admin_url_fails_loudly(value):
    result = run(PRINT_DB, SECRET_KEY="k", DATABASE_URL="postgres://u@h/x", ADMIN_URL=value)
    assert result.returncode != 0
    assert "ADMIN_URL must be a path without a leading slash" in result.stderr
