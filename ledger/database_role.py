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
(NOLOGIN: it is reached by SET ROLE from the owner), makes the owner a member
so it may switch to it, and grants it what the tables of this database need,
now and, by default privileges, on the tables and sequences later migrations
create. Creating the role takes a user allowed to create roles; without that
right the migration says what is missing, and a DBA creates the role and
makes the owner a member once.
"""

import logging

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, transaction
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
    """What the role may do on the tables of this database, now and (default
    privileges of the user who migrates) on those later migrations create."""
    name = sql.Identifier(role)
    statements: list[sql.Composable] = [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            name
        ),
        sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(name),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}"
        ).format(name),
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
    post_migrate receiver; idempotent). Each statement is tried on its own:
    one the migrating user may not run is reported, and the rest still run."""
    role = settings.DATABASE_APP_ROLE
    if not role:
        return
    connection = connections[using]
    name = sql.Identifier(role)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        exists = cursor.fetchone() is not None
        statements = [] if exists else [sql.SQL("CREATE ROLE {} NOLOGIN").format(name)]
        if not exists or not _is_member(cursor, role):
            statements.append(sql.SQL("GRANT {} TO CURRENT_USER").format(name))
        failed = []
        for statement in statements + grant_statements(role):
            try:
                with transaction.atomic(using=using):
                    cursor.execute(statement)
            except DatabaseError as exc:
                failed.append(f"{statement.as_string(cursor.connection)}: {exc}".strip())
    if failed:
        # The migration itself succeeded; the warning says what is missing.
        logger.warning(
            "The database role %r is not fully set up; run these as a user allowed to, "
            "or set DATABASE_APP_ROLE= to run as the owner (docs/production.md):\n%s",
            role,
            "\n".join(failed),
        )


def _is_member(cursor, role: str) -> bool:
    cursor.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [role])
    return cursor.fetchone()[0]


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
