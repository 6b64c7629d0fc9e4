"""Django's PostgreSQL backend, with a health check that trusts a connection
which has just served a request.

With `CONN_HEALTH_CHECKS`, Django sends `SELECT 1` before the first query of
every request on a persistent connection: a round trip per request, a tenth
of the work of an event detail. Here the check is left out when the
connection finished its last request without a database error less than
`TRUSTED_FOR` seconds ago. A request that meets a server restart gets an
error, and Django closes that connection at its end; so the next request on
it connects anew, as before.

A web process connects as `SERVING_ROLE` when the settings name one
(ledger/database_role.py): the server switches to that role as the
connection starts, at no extra round trip.

`prepared_cursor()` is for the statements the hot read paths run on every
request (events/representations.py): it binds parameters on the server, so
that psycopg prepares a statement once the connection has run it
`prepare_threshold` times (OPTIONS; settings.DATABASE_PREPARE_THRESHOLD) and
PostgreSQL plans it once per connection rather than on every request. Other
cursors keep Django's client-side binding, which never prepares.
"""

import time
from typing import Any

from django.core.signals import request_finished
from django.db import connections
from django.db.backends.postgresql import base, operations
from django.db.backends.utils import CursorWrapper

TRUSTED_FOR = 1.0  # seconds
SERVED_UID = "eventledger-connection-served"


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """The statement as logged when queries are (tests, DEBUG), with its
        values, as Django logs a client-side binding cursor's: a server-binding
        cursor keeps $1-style placeholders, or no text at all once its
        statement is prepared."""
        if isinstance(cursor, base.ServerBindingCursor):
            return self.compose_sql(sql, params)
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    served_at: float | None = None  # when it last finished a request without error

    def get_connection_params(self):
        params = super().get_connection_params()
        role = self.settings_dict.get("SERVING_ROLE")
        if role:
            params["options"] = f"{params.get('options', '')} -c role={role}".strip()
        return params

    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.served_at is not None
            and time.monotonic() - self.served_at < TRUSTED_FOR
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def close(self):
        self.served_at = None
        super().close()

    def prepared_cursor(self) -> CursorWrapper:
        """A cursor like `cursor()`'s, binding its parameters on the server."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        self.validate_thread_sharing()
        with self.wrap_database_errors:
            cursor: Any = base.ServerBindingCursor(self.connection)  # type: ignore[call-arg]
        # As cursor() wraps its own: logged when queries are (tests, DEBUG).
        return self.make_debug_cursor(cursor) if self.queries_logged else self.make_cursor(cursor)


def served(**kwargs) -> None:
    """At the end of a request: note the time on each connection that is open
    and met no database error."""
    # Runs after Django's own receiver, which has closed a connection that had
    # an error and is no longer usable.
    for connection in connections.all(initialized_only=True):
        if (
            isinstance(connection, DatabaseWrapper)
            and connection.connection is not None
            and not getattr(connection, "errors_occurred", False)
        ):
            connection.served_at = time.monotonic()


request_finished.connect(served, dispatch_uid=SERVED_UID)
