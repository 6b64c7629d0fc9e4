"""The database backend's health check of persistent connections
(config/postgresql/base.py): skipped for a connection that has just served a
request without error, made otherwise."""

import pytest
from django.core.signals import request_finished
from django.db import connection, connections

from config.postgresql.base import TRUSTED_FOR, DatabaseWrapper

pytestmark = pytest.mark.django_db


@pytest.fixture
def checks(monkeypatch):
    """The health checks the connection runs (each would be a SELECT 1)."""
    made = []
    connection.ensure_connection()
    monkeypatch.setattr(connection, "is_usable", lambda: made.append(1) or True)
    monkeypatch.setattr(connection, "served_at", None)
    return made


def start_request() -> None:
    connection.health_check_done = False
    connection.close_if_health_check_failed()


def test_the_service_uses_this_backend():
    assert isinstance(connections["default"], DatabaseWrapper)
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_connection_that_just_served_a_request_is_not_checked(checks):
    request_finished.send(sender=None)
    start_request()
    assert checks == []


def test_a_connection_idle_for_longer_is_checked(checks):
    request_finished.send(sender=None)
    connection.served_at -= TRUSTED_FOR + 0.1
    start_request()
    assert checks == [1]


def test_a_connection_whose_request_met_a_database_error_is_checked(checks, monkeypatch):
    monkeypatch.setattr(connection, "errors_occurred", True)
    request_finished.send(sender=None)
    assert connection.served_at is None
    start_request()
    assert checks == [1]


def test_a_connection_that_never_served_a_request_is_checked(checks):
    start_request()
    assert checks == [1]
