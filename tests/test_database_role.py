"""The web process runs as a database role that owns nothing and may add to
the history but not change it."""

import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.utils import ProgrammingError

from events.models import EventSnapshot
from ledger.database_role import history_tables, serve_as_app_role
from tests.factories import EventFactory

ROLE = settings.DATABASE_APP_ROLE


def as_role(cursor) -> None:
    cursor.execute(f"SET LOCAL ROLE {ROLE}")


@pytest.mark.django_db
def test_migrate_creates_the_role_which_owns_nothing():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", [ROLE])
        assert cursor.fetchone() == (False, False)
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s", [ROLE])
        assert cursor.fetchone() == (0,)


@pytest.mark.django_db
def test_the_role_writes_records_and_their_history():
    with connection.cursor() as cursor:
        as_role(cursor)
        event = EventFactory(title="Written as the role")
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (ROLE,)
    assert EventSnapshot.objects.filter(pgh_obj_id=event.pk, title="Written as the role").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET pgh_label = 'rewritten'",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
def test_the_role_may_not_change_or_remove_history(statement):
    EventFactory()
    tables = history_tables()
    assert "events_eventsnapshot" in tables and "actors_actorsnapshot" in tables
    for table in tables:
        with transaction.atomic(), connection.cursor() as cursor:
            as_role(cursor)
            with (
                pytest.raises(ProgrammingError, match="permission denied"),
                transaction.atomic(),
            ):
                cursor.execute(statement.format(table=table))
    assert EventSnapshot.objects.exclude(pgh_label="rewritten").exists()


@pytest.mark.django_db(transaction=True)
def test_a_web_process_connects_as_the_role():
    try:
        serve_as_app_role()
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, session_user")
            current, session = cursor.fetchone()
        assert current == ROLE
        assert session != ROLE
    finally:
        for alias in connections:
            connections.settings[alias].pop("SERVING_ROLE", None)
        connections.close_all()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() != (ROLE,)


@pytest.mark.django_db
def test_tables_and_sequences_created_after_migrate_are_granted_too():
    """Default privileges: a later migration's table needs no second grant
    before the web process may use it (migration 0011's sequence did)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE el_probe (id bigserial PRIMARY KEY, x int)")
        as_role(cursor)
        cursor.execute("INSERT INTO el_probe (x) VALUES (1) RETURNING id")
        assert cursor.fetchone() == (1,)
