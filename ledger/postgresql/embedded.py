"""The embedded PostgreSQL a fresh checkout runs on when no DATABASE_URL is
set (pgserver: a PostgreSQL build installed from PyPI). Imported by the
settings, before Django is set up: it imports nothing of Django."""

import warnings
from pathlib import Path


def embedded_database(data_dir: Path, name: str) -> dict:
    """Start (or reuse) the embedded PostgreSQL in `data_dir` and return Django's
    connection settings for database `name`, creating that database if needed.

    The server outlives this process only while other processes use it; its data
    stays in `data_dir` across restarts.
    """
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, as in CI and containers.
        warnings.simplefilter("ignore")
        import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(data_dir),
        "PORT": "",
    }
