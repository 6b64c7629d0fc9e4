"""The database role the service runs as.

Migrations and management commands connect as the owner of the tables (the
user of `DATABASE_URL`, or `postgres` in the embedded server). The web process
(config/wsgi.py, which gunicorn and `runserver` load) switches every
connection to `DATABASE_APP_ROLE` (default `ledger_app`), a role that owns
nothing and may only:

- read and write the rows of the application's tables and use their sequences;
- add to the history (the snapshot tables of pghistory), never change or
  remove a row of it: no UPDATE, DELETE or TRUNCATE there.

After every `migrate`, `ensure_app_role()` creates the role when it is missing
(NOLOGIN: it is reached by SET ROLE from the owner), grants it what the tables
of this database need, and makes the owner a member so it may switch to it.
That takes a user allowed to create roles; without that right the migration
says so and the DBA runs the statements of `grant_statements()` once.
"""

import logging

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections
from psycopg import sql

logger = logging.getLogger(__name__)


def history_tables() -> list[str]:
    """The snapshot tables of every tracked model."""
    import pghistory.models

    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, pghistory.models.Event) and not model._meta.abstract
    )


def grant_statements(role: str) -> list[sql.Composable]:
    name = sql.Identifier(role)
    statements = [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            name
        ),
        sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
    ]
    for table in history_tables():
        statements.append(
            sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(
                sql.Identifier(table), name
            )
        )
    return statements


def ensure_app_role(using: str = "default", **kwargs) -> None:
    """Create the service's role if needed and grant it what it may do (a
    post_migrate receiver; idempotent)."""
    role = settings.DATABASE_APP_ROLE
    if not role:
        return
    connection = connections[using]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            cursor.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(role)))
            for statement in grant_statements(role):
                cursor.execute(statement)
    except DatabaseError as exc:
        # The migration itself succeeded; the service will refuse to connect
        # until the role exists, which the warning says how to fix.
        logger.warning(
            "Could not set up the database role %r (%s). Create it as a user allowed to "
            "create roles (manage.py migrate does so), or set DATABASE_APP_ROLE= to run "
            "as the owner; see docs/production.md.",
            role,
            exc,
        )


def serve_as_app_role() -> None:
    """From now on, every new connection of this process runs as the app role
    (`SERVING_ROLE`, which config/postgresql/base.py passes to the server as
    the connection's `role`); connections already open are closed."""
    role = settings.DATABASE_APP_ROLE
    if not role:
        return
    for alias in connections:
        connections.settings[alias]["SERVING_ROLE"] = role
    connections.close_all()
