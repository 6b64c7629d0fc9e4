"""Which database a request's queries go to, when the service has streaming
replicas (`DATABASE_REPLICA_URLS`; without it, none of this is installed).

- The reads of a safe API request (GET, HEAD under /api/) go to a replica in
  rotation (ledger/replicas.py); everything else goes to the primary: every
  write, every read of a write request (so `If-Match` is compared on the
  primary under the row lock), every read inside a transaction of the
  primary, the admin's pages (browser sessions carry no commit position),
  and the authentication tables, so a token revoked a moment ago is refused.
- Read-your-writes: the answer to a write carries the primary's WAL position
  after its commit in `X-Commit-Position`; a read sending it back is served
  by a replica that has replayed that far, or by the primary. A position no
  replica has reached (one ahead of the primary included) is served by the
  primary at once: nothing waits. A malformed one is a 400 problem.
- A replica that fails under a request (gone, or a query cancelled by a
  conflict with its recovery) is taken out of rotation and the request runs
  again on the primary: a safe request may run twice. A streamed answer
  (an export) that fails after its first bytes cannot be run again.

Raw SQL of read paths takes its connection from `reading`, which is
`django.db.connection` for the database this request reads from.
"""

import contextlib
import contextvars
import logging
from collections.abc import Callable

import psycopg.errors
from django.core.signals import request_finished
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse

from ledger import replicas
from ledger.api.errors import API_PREFIX, PROBLEM_TYPE_BASE, problem_response

logger = logging.getLogger(__name__)

HEADER = "X-Commit-Position"
ROUTED_METHODS = ("GET", "HEAD")
# Read from the primary whatever the request: who is signed in, with what rights.
PRIMARY_APPS = frozenset({"auth", "authtoken", "sessions", "axes", "admin", "contenttypes"})


class Routing:
    """The replica serving one request's reads, and what failed there."""

    def __init__(self, alias: str):
        self.alias = alias
        self.failure: BaseException | None = None

    def watch(self, execute, sql, params, many, context):
        """An execute wrapper on the replica: notes a failure that the primary
        would not have (not a statement timeout, which it would have too)."""
        try:
            return execute(sql, params, many, context)
        except (OperationalError, InterfaceError) as exc:
            # A conflict with the replica's recovery is a SerializationFailure.
            if not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
                self.failure = exc
            raise


_routing: contextvars.ContextVar[Routing | None] = contextvars.ContextVar(
    "eventledger_routing", default=None
)


def read_alias() -> str:
    """The database this request reads from now."""
    routing = _routing.get()
    if routing is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return routing.alias


class ReadingConnection:
    """`django.db.connection` for the database the current request reads from."""

    def __getattr__(self, name: str):
        return getattr(connections[read_alias()], name)


reading = ReadingConnection()


class ReplicaRouter:
    """Django's database router: reads as `read_alias()` says, writes and
    migrations on the primary."""

    def db_for_read(self, model, **hints) -> str:
        if model is not None and model._meta.app_label in PRIMARY_APPS:
            return DEFAULT_DB_ALIAS
        return read_alias()

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # every alias is the same database

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


class ReplicaMiddleware:
    """Routes each request (see the module's docstring); answers writes with
    their commit position."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        _routing.set(None)
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        raw = request.headers.get(HEADER)
        try:
            position = replicas.parse_position(raw) if raw is not None else None
        except ValueError:
            return invalid_position(request)
        if request.method not in ROUTED_METHODS:
            return self.with_position(self.get_response(request))
        alias = replicas.pool().choose(position)
        if alias is None:
            return self.get_response(request)
        routing = Routing(alias)
        _routing.set(routing)
        try:
            # A replica that went away since it last served: the primary serves.
            connections[alias].close_if_health_check_failed()
            connections[alias].ensure_connection()
        except (OperationalError, InterfaceError) as exc:
            routing.failure = exc
        else:
            with connections[alias].execute_wrapper(routing.watch):
                response = self.get_response(request)
            if routing.failure is None:
                return response
            response.close()  # ends this attempt (request_finished: connections tidied)
        replicas.pool().get(alias).down(routing.failure)
        logger.warning(
            "%s %s: replica %s failed (%s); answered by the primary",
            request.method,
            request.path,
            alias,
            str(routing.failure).strip().splitlines()[0] if str(routing.failure).strip() else "",
        )
        _routing.set(None)
        return self.get_response(request)

    @staticmethod
    def with_position(response: HttpResponse) -> HttpResponse:
        """A write's answer, with the primary's position once it has committed."""
        primary = connections[DEFAULT_DB_ALIAS]
        if (
            response.status_code < 500
            and primary.connection is not None
            and not primary.in_atomic_block
        ):
            # Without it (the primary gone after the commit), the write's answer stands.
            with contextlib.suppress(OperationalError, InterfaceError):
                position = replicas.position_of(DEFAULT_DB_ALIAS)
                response[HEADER] = replicas.format_position(position)
        return response


def invalid_position(request: HttpRequest) -> HttpResponse:
    return problem_response(
        400,
        "Invalid request",
        "The request headers did not validate; see errors.",
        type_=PROBLEM_TYPE_BASE + "validation-error",
        instance=request.path,
        errors=[
            {
                "header": HEADER,
                "detail": "A commit position as the answer to a write gave it "
                "(two hexadecimal numbers separated by a slash, such as 16/B374D848).",
                "code": "invalid",
            }
        ],
    )


def _finished(**kwargs) -> None:
    # A streamed answer reads from the request's database until it is closed.
    _routing.set(None)


request_finished.connect(_finished, dispatch_uid="eventledger-routing-finished")
