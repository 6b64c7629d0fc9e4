"""The context of a write (who, through what request, why), recorded with
every snapshot."""

import contextlib
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pghistory
import pghistory.runtime
from django.http import HttpRequest, HttpResponse

from ledger.api.errors import InvalidHeader

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
REASON_HEADER = "X-Change-Reason"
MAX_REASON_LENGTH = 500
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")

# Context --------------------------------------------------------------------


class TracedRequest(HttpRequest):
    """A request as RequestContextMiddleware leaves it (for type checkers: the
    object stays Django's own request)."""

    request_id: str
    client_request_id: str | None


class RequestContextMiddleware:
    """Gives every request an id of the server's own (answered in
    `X-Request-ID`) and records, for every write it makes, the channel (api,
    admin, web), that id, the client's own `X-Request-ID` when it sent a sane
    one (as `client_request_id`: the client chose it, so it proves nothing),
    the path, and the user when the session already knows them. The API adds
    the token's user and the client's reason itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: TracedRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request.request_id = uuid.uuid4().hex
        request.client_request_id = given if REQUEST_ID_RE.match(given) else None
        if request.method in SAFE_METHODS:
            response = self.get_response(request)
        else:
            with pghistory.context(**request_metadata(request)):
                response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


def request_metadata(request: TracedRequest) -> dict[str, Any]:
    path = request.path
    via = "api" if path.startswith("/api/") else "admin" if path.startswith("/admin/") else "web"
    metadata: dict[str, Any] = {"via": via, "request_id": request.request_id, "url": path}
    if getattr(request, "client_request_id", None):
        metadata["client_request_id"] = request.client_request_id
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        metadata.update(user=user.pk, username=user.get_username(), auth="session")
    return metadata


def record_api_context(request) -> None:
    """Attach the authenticated user and the client's reason to the request's
    history context (the API authenticates after the middleware has run)."""
    metadata: dict[str, Any] = {}
    if request.user.is_authenticated:
        metadata.update(
            user=request.user.pk,
            username=request.user.get_username(),
            auth="token" if request.auth is not None else "session",
        )
    reason = header_text(request.headers.get(REASON_HEADER, ""), REASON_HEADER).strip()
    if len(reason) > MAX_REASON_LENGTH:
        message = f"At most {MAX_REASON_LENGTH} characters; this one has {len(reason)}."
        raise InvalidHeader({REASON_HEADER: [message]})
    if reason:
        metadata["reason"] = reason
    if metadata:
        pghistory.context(**metadata)


@contextlib.contextmanager
def separate_context(**metadata: Any) -> Iterator[None]:
    """Writes of their own within a request: their snapshots get a context of
    their own, the request's metadata with `metadata` added. pghistory keeps
    one context per request, whose metadata the last write's replaces, so an
    admin action that merges several records, each with its own `merge`,
    gives each its own context."""
    # pghistory has no public way to open a context inside another; its
    # tracker is read at every statement (tests/test_admin_merge.py pins it).
    tracker = pghistory.runtime._tracker
    outer = getattr(tracker, "value", None)
    if outer is None:
        with pghistory.context(**metadata):
            yield
        return
    tracker.value = pghistory.runtime.Context(
        id=uuid.uuid4(), metadata={**outer.metadata, **metadata}
    )
    try:
        yield
    finally:
        tracker.value = outer


def header_text(raw: str, name: str) -> str:
    """A header's text, exact: UTF-8 as sent (a WSGI server hands headers
    over decoded as ISO-8859-1, which garbles "café"), or an RFC 8187
    extended value (`UTF-8''caf%C3%A9`). Bytes that are neither are refused."""
    if raw[:7].lower() == "utf-8''":
        try:
            return urllib.parse.unquote(raw[7:], encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise InvalidHeader({name: ["The RFC 8187 value does not decode as UTF-8."]}) from None
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:  # already text (a server that decodes UTF-8 itself)
        return raw
    except UnicodeDecodeError:
        raise InvalidHeader(
            {name: ["Send the text as UTF-8, or as an RFC 8187 value (UTF-8''...)."]}
        ) from None
