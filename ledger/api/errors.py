"""RFC 9457 problem responses: the API's exceptions, the handler that renders
every error as a problem, and the middleware that does the same for Django's
own error pages."""

import json
import logging
from collections.abc import Callable
from typing import Any

import psycopg.errors
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.db.models.deletion import ProtectedError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status

from ledger.services import ConflictError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:event-ledger:problem:"
API_PREFIX = "/api/"


# Problem details ----------------------------------------------------------


def problem_response(
    status_code: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    instance: str = "",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> HttpResponse:
    """An RFC 9457 problem document. Returned as a plain Django response, so no
    content negotiation can turn an API error into an HTML page."""
    body = {"type": type_, "title": title, "status": status_code, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class InvalidQuery(exceptions.ValidationError):
    """Invalid query parameters: reported by name (`errors[].parameter`), not
    by JSON pointer."""

    where = "query parameters"
    key = "parameter"


class InvalidHeader(InvalidQuery):
    """Invalid request headers: reported by header name (`errors[].header`)."""

    where = "request headers"
    key = "header"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = (
        "Send If-Match with the record's ETag (its revision): writes must say which "
        "revision they change."
    )
    default_code = "precondition-required"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition-failed"

    def __init__(self, current_revision: int):
        super().__init__(
            f"The record has changed: it is at revision {current_revision}. "
            "Read it again and reapply your change."
        )
        self.extra = {"current_revision": current_revision}


class Gone(exceptions.APIException):
    status_code = status.HTTP_410_GONE
    default_code = "gone"

    def __init__(self, history_url: str):
        super().__init__("This record was deleted. Its history stays readable.")
        self.extra = {"history_url": history_url}


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service cannot answer right now; try again shortly."
    default_code = "unavailable"


def _error_items(detail: Any, path: str = "") -> list[tuple[str, str, str]]:
    """Flatten DRF's nested error structure into (path, message, code) triples."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            items += _error_items(value, f"{path}/{name}" if name else path)
        return items
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [(path, str(item), getattr(item, "code", "invalid")) for item in detail]
        items = []
        for index, value in enumerate(detail):
            if value:  # DRF puts an empty dict for list items without errors
                items += _error_items(value, f"{path}/{index}")
        return items
    return [(path, str(detail), getattr(detail, "code", "invalid"))]


def _validation_problem(exc: exceptions.ValidationError, request) -> HttpResponse:
    errors = []
    for path, message, code in _error_items(exc.detail):
        if isinstance(exc, InvalidQuery):
            errors.append({exc.key: path.lstrip("/"), "detail": message, "code": code})
        else:
            errors.append({"pointer": path, "detail": message, "code": code})
    what = exc.where if isinstance(exc, InvalidQuery) else "request body"
    return problem_response(
        400,
        "Invalid request",
        f"The {what} did not validate; see errors.",
        type_=PROBLEM_TYPE_BASE + "validation-error",
        instance=request.path if request else "",
        errors=errors,
    )


def _database_message(exc: DatabaseError) -> str:
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or str(exc).splitlines()[0]


def problem_exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    """DRF's exception handler, answering every error as problem+json."""
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, ConflictError):
        exc = Conflict(str(exc))
    elif isinstance(exc, ProtectedError):
        names = sorted({str(type(obj)._meta.verbose_name_plural) for obj in exc.protected_objects})
        exc = Conflict(
            f"This record is still referenced by {', '.join(names)}; remove those first."
        )
    elif isinstance(exc, IntegrityError):
        exc = Conflict(f"The database refused the change: {_database_message(exc)}")
    elif isinstance(exc, OperationalError | InterfaceError):
        if isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
            exc = ServiceUnavailable("The query took too long and was cancelled; narrow it down.")
        else:
            logger.warning("Database unavailable: %s", exc)
            exc = ServiceUnavailable("The database is unavailable; try again shortly.")

    if isinstance(exc, exceptions.ValidationError):
        return _validation_problem(exc, request)
    # Imported here: rest_framework.views reads the API settings, which name this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: ProblemMiddleware answers 500
    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
    headers = {
        k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")
    }
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    extra = dict(getattr(exc, "extra", {}))
    # Throttled.wait: set by DRF, missing from its stubs.
    wait = exc.wait if isinstance(exc, exceptions.Throttled) else None  # type: ignore[attr-defined]
    if wait is not None:
        extra["retry_after"] = int(wait)
    return problem_response(
        response.status_code,
        _title(response.status_code),
        str(detail),
        type_=PROBLEM_TYPE_BASE + code.replace("_", "-")
        if isinstance(code, str)
        else "about:blank",
        instance=request.path if request else "",
        headers=headers,
        **extra,
    )


def _title(status_code: int) -> str:
    from http import HTTPStatus

    return HTTPStatus(status_code).phrase


class ProblemMiddleware:
    """Guards everything under /api/: refuses oversized bodies (413) and NUL
    bytes in the query string (400) before any view runs, and answers errors
    that escape the views (404 for unknown URLs, 500, 503) as problem+json."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(400, "Bad Request", "Content-Length is not a number.")
        if limit is not None and length > limit:
            return problem_response(
                413,
                "Content Too Large",
                f"The request body is {length} bytes; the limit is {limit}.",
                type_=PROBLEM_TYPE_BASE + "body-too-large",
                instance=request.path,
            )
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in query or "%00" in query:
            return problem_response(
                400,
                "Bad Request",
                "The query string contains a NUL character.",
                type_=PROBLEM_TYPE_BASE + "nul-character",
                instance=request.path,
            )
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exc, OperationalError | InterfaceError):  # the database is away
            return problem_response(
                503,
                "Service Unavailable",
                "The database is unavailable; try again shortly.",
                type_=PROBLEM_TYPE_BASE + "unavailable",
                instance=request.path,
                headers={"Retry-After": "5"},
            )
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return problem_response(
            500,
            "Internal Server Error",
            "The server failed to answer this request; the error has been logged.",
            instance=request.path,
        )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF refusal, as a problem document under /api/."""
    if request.path.startswith(API_PREFIX):
        return problem_response(
            403,
            "Forbidden",
            f"CSRF verification failed: {reason} Programs should authenticate with a token.",
            type_=PROBLEM_TYPE_BASE + "csrf-failed",
            instance=request.path,
        )
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)


def _with_trailing_slash(request: HttpRequest) -> str | None:
    """The request's URL with a trailing slash added (absolute, query kept),
    when an API view answers there."""
    if request.path_info.endswith("/"):
        return None
    try:
        match = resolve(request.path_info + "/", getattr(request, "urlconf", None))
    except Resolver404:
        return None
    if match.func is api_not_found:
        return None
    return request.build_absolute_uri(request.get_full_path(force_append_slash=True))


@csrf_exempt
def api_not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Any URL under /api/ that no resource answers. One that lacks only its
    trailing slash is redirected there when read (GET, HEAD); any other method
    gets a 404 naming the URL, since a redirect would have the client send its
    body again, or, for many clients, turn a POST into a GET."""
    url = _with_trailing_slash(request)
    if url is not None and request.method in ("GET", "HEAD"):
        return HttpResponsePermanentRedirect(url)
    if url is not None:
        return problem_response(
            404,
            "Not Found",
            f"No API resource at {request.path}. API URLs end with a slash: send the "
            f"request to {url}",
            type_=PROBLEM_TYPE_BASE + "missing-trailing-slash",
            instance=request.path,
            url=url,
        )
    return problem_response(
        404,
        "Not Found",
        f"No API resource at {request.path}. The API root is /api/v1/; see /api/v1/docs/.",
        type_=PROBLEM_TYPE_BASE + "not-found",
        instance=request.path,
    )
