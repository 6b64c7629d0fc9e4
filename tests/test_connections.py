"""The database backend's health check of persistent connections
(config/postgresql/base.py): skipped for a connection that has just served a
request without error, made otherwise."""

import pytest
from django.core.signals import request_finished
from django.db import connections

from ledger.postgresql.base import SERVED_UID, TRUSTED_FOR, DatabaseWrapper, served

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn(monkeypatch):
    """The connection, its health checks (each would be a SELECT 1) counted
    in `conn.checks`."""
    connection = connections["default"]
    connection.ensure_connection()
    saved = connection.served_at, getattr(connection, "errors_occurred", False)
    connection.checks = []
    monkeypatch.setattr(connection, "is_usable", lambda: connection.checks.append(1) or True)
    connection.served_at, connection.errors_occurred = None, False
    yield connection
    connection.served_at, connection.errors_occurred = saved
    del connection.checks


def start_request(connection) -> None:
    connection.health_check_done = False
    connection.close_if_health_check_failed()


def test_the_service_uses_this_backend():
    connection = connections["default"]
    assert isinstance(connection, DatabaseWrapper)
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    # The end of every request notes the time (not sent here: Django's own
    # receivers would close the connection of the test's transaction).
    assert any(key[0] == SERVED_UID for key, *_ in request_finished.receivers)


def test_a_connection_that_just_served_a_request_is_not_checked(conn):
    served()
    start_request(conn)
    assert conn.checks == []


def test_a_connection_idle_for_longer_is_checked(conn):
    served()
    conn.served_at -= TRUSTED_FOR + 0.1
    start_request(conn)
    assert conn.checks == [1]


def test_a_connection_whose_request_met_a_database_error_is_checked(conn):
    conn.errors_occurred = True
    served()
    assert conn.served_at is None
    start_request(conn)
    assert conn.checks == [1]


def test_a_connection_that_never_served_a_request_is_checked(conn):
    start_request(conn)
    assert conn.checks == [1]
