"""The conventions every API resource shares: RFC 9457 problem responses,
strict JSON parsing, keyset (cursor) pagination, filter errors and throttles.
The settings name these classes; this module must not import DRF's views.
"""

import base64
import binascii
import calendar
import datetime
import difflib
import json
import logging
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

import psycopg.errors
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, models
from django.db.models.deletion import ProtectedError
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django_filters import CharFilter, MultipleChoiceFilter
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.pagination import BasePagination
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle
from rest_framework.utils.json import strict_constant
from rest_framework.utils.urls import replace_query_param

from events.services import ConflictError

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
    by_name = isinstance(exc, InvalidQuery)
    errors = []
    for path, message, code in _error_items(exc.detail):
        if by_name:
            errors.append({exc.key: path.lstrip("/"), "detail": message, "code": code})
        else:
            errors.append({"pointer": path, "detail": message, "code": code})
    what = exc.where if by_name else "request body"
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
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail)
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
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after"] = int(exc.wait)
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


@csrf_exempt
def api_not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Any URL under /api/ that no resource answers."""
    return problem_response(
        404,
        "Not Found",
        f"No API resource at {request.path}. The API root is /api/v1/; see /api/v1/docs/.",
        type_=PROBLEM_TYPE_BASE + "not-found",
        instance=request.path,
    )


# Parsing --------------------------------------------------------------------


# How deep a JSON body may nest: the API's bodies need about 5 levels.
MAX_JSON_DEPTH = 32
# A JSON string literal, escapes included: its brackets are text, not structure.
# One never closed runs to the end of the text (`\Z`): without that, the
# engine would retry from every escaped quote, in time quadratic in the body.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
# Everything but the brackets, once the strings are gone.
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class StrictJSONParser(JSONParser):
    """JSON bodies only, nested at most MAX_JSON_DEPTH levels (checked on the
    text, before Python's recursive parser sees it), without NUL characters
    (PostgreSQL text cannot hold them)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if json_depth_exceeds(text, MAX_JSON_DEPTH):
            raise exceptions.ParseError(
                f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep; "
                "the API's bodies need far fewer."
            )
        try:
            parse_constant = strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if _contains_nul(data):
            raise exceptions.ParseError("JSON strings must not contain NUL (\\u0000) characters.")
        return data


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether the JSON text nests arrays and objects deeper than `limit`, at
    any point (an unclosed prefix counts too). Brackets inside strings do not
    count. Runs at C speed: regexes strip the strings and the rest, and the
    depth is a running sum."""
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > limit


def _contains_nul(value: Any) -> bool:
    """Whether a parsed JSON value holds a NUL character in any string or key.
    Iterative: a deep value must not exhaust the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


_DATE_PARTS = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def date_from_iso(text: str) -> datetime.date:
    """A date written YYYY-MM-DD, the only form the API takes. The ValueError
    says what is wrong: the form, or which part cannot exist ("February 2023
    has no day 30"), so that a client does not hunt for a format problem."""
    match = _DATE_PARTS.fullmatch(text)
    if not match:
        raise ValueError("Use the format YYYY-MM-DD, e.g. 2023-11-09.")
    year, month, day = (int(part) for part in match.groups())
    if year == 0:
        raise ValueError("Not a valid date: there is no year 0.")
    if not 1 <= month <= 12:
        raise ValueError(f"Not a valid date: there is no month {month}.")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise ValueError(
            f"Not a valid date: {_MONTH_NAMES[month - 1]} {year} has no day {day} "
            f"(it has {last} days)."
        )
    return datetime.date(year, month, day)


# Ids and page sizes -----------------------------------------------------------

MAX_ID = 2**63 - 1  # ids are bigint
ID_TEXT = re.compile(r"[0-9]{1,19}")  # an id as written in a query or a body


def page_size_from(raw: str | None, default: int, maximum: int) -> int:
    """The `page_size` parameter of any paginated answer: 1 to `maximum`."""
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise InvalidQuery({"page_size": [f"Must be a whole number from 1 to {maximum}."]})
    return int(raw)


# Headers --------------------------------------------------------------------

ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')  # an ETag, weak or strong (RFC 9110)
_REVISION_TAG = re.compile(r"[1-9][0-9]{0,17}")


def check_if_match(header: str) -> None:
    """Refuse an If-Match that no record could ever match: it must be `*` or
    the quoted ETag of the record (its revision, `"3"`), or a comma-separated
    list of them. A weak tag (W/"3") is refused too: If-Match compares
    strongly (RFC 9110), so it could only ever fail, and the client would be
    told wrongly that the record changed."""
    header = header.strip()
    if header == "*":
        return
    items = [item.strip() for item in header.split(",")]
    for item in items:
        match = ENTITY_TAG.fullmatch(item)
        if match and match.group(1) and _REVISION_TAG.fullmatch(match.group(2)):
            problem = (
                f"{item} is a weak ETag; If-Match compares strongly, so it never matches. "
                f'Send the ETag as the record gives it, like "{match.group(2)}".'
            )
        elif match and (match.group(1) or not _REVISION_TAG.fullmatch(match.group(2))):
            problem = (
                f"{item} is not an ETag of this API: ETags are revisions in double "
                'quotes, like "3". Send the record\'s ETag, or * for any revision.'
            )
        elif not match:
            problem = (
                f'Send the record\'s ETag in double quotes, like "3" (or * for any '
                f"revision); {item or 'an empty item'} is not one."
            )
        else:
            continue
        raise InvalidHeader({"If-Match": [ErrorDetail(problem, code="invalid_etag")]})


# Filtering and throttling ---------------------------------------------------


class FilterBackend(DjangoFilterBackend):
    """django-filter, reporting invalid values per query parameter."""

    def filters_given(self, request, queryset, view) -> bool:
        """Whether the request names any of the view's filters."""
        filterset_class = self.get_filterset_class(view, queryset)
        return filterset_class is not None and any(
            name in request.query_params for name in filterset_class.base_filters
        )

    def filter_queryset(self, request, queryset, view):
        if not self.filters_given(request, queryset, view):
            return queryset  # nothing to filter by: no filterset to build (a hot path)
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        # An empty value of a typed filter (a date, an id, a choice) is an error, not
        # "no filter": the schema says what a value must look like.
        empty = [
            name
            for name, declared in filterset.filters.items()
            if "" in request.query_params.getlist(name) and not isinstance(declared, CharFilter)
        ]
        if empty:
            raise InvalidQuery(
                {name: ["Give a value, or leave the parameter out."] for name in empty}
            )
        if not filterset.is_valid():
            raise InvalidQuery(filterset.errors)
        return filterset.qs


class StrictQueryMixin:
    """For API views: a query parameter the view does not take is refused (400,
    naming it and the accepted ones) rather than ignored, and so is a repeated
    parameter that takes one value. A misspelt filter must not answer every
    record.

    Accepted everywhere: `format`. On lists (and plain GET views such as the
    export): the filterset's filters, repeatable when they mean "any of"
    (MultipleChoiceFilter and its subclasses), and the paginator's
    `query_parameters`. Besides: `query_parameters[action]` (the viewset
    action, or the HTTP method of a plain view), of which
    `repeatable_parameters` may be repeated.
    """

    query_parameters: dict[str, tuple[str, ...]] = {}
    repeatable_parameters: tuple[str, ...] = ()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # 401, 403 and 429 come first
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            # A method the view does not take is a 405, whatever the query says.
            self.http_method_not_allowed(request, *args, **kwargs)
        check_query_parameters(request.query_params, self.accepted_query_parameters(request))

    def accepted_query_parameters(self, request) -> dict[str, bool]:
        """The parameters this request may carry, each with whether it may repeat."""
        action = getattr(self, "action", None) or request.method.lower()
        if action == "head":  # answered by get(), with the same parameters
            action = "get"
        accepted = {api_settings.URL_FORMAT_OVERRIDE: False}
        for name in self.query_parameters.get(action, ()):
            accepted[name] = name in self.repeatable_parameters
        if action in ("list", "get", "head"):
            filterset_class = getattr(self, "filterset_class", None)
            if filterset_class is not None:
                for name, declared in filterset_class.base_filters.items():
                    accepted[name] = isinstance(declared, MultipleChoiceFilter)
            paginator = getattr(self, "paginator", None)
            for name in getattr(paginator, "query_parameters", ()):
                accepted[name] = False
        return accepted


def check_query_parameters(query: QueryDict, accepted: dict[str, bool]) -> None:
    """Refuse parameters not in `accepted`, and repeats of those that take one value."""
    errors = {}
    for name, values in query.lists():
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            errors[name] = [
                ErrorDetail(
                    f"Unknown parameter.{hint} Accepted here: {', '.join(sorted(accepted))}.",
                    code="unknown_parameter",
                )
            ]
        elif len(values) > 1 and not accepted[name]:
            errors[name] = [
                ErrorDetail(
                    f"Given {len(values)} times; this parameter takes one value.",
                    code="repeated_parameter",
                )
            ]
    if errors:
        raise InvalidQuery(errors)


class FailOpenThrottleMixin:
    """Rates read at request time (so a changed setting takes effect), and a cache
    outage lets requests through rather than failing them all."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # the shared cache is down: serve, and say so in the log
            logger.warning("Throttle cache unavailable; request not throttled.", exc_info=True)
            return True


class AnonThrottle(FailOpenThrottleMixin, AnonRateThrottle):
    pass


class UserThrottle(FailOpenThrottleMixin, UserRateThrottle):
    """The signed-in users' rate. Anonymous requests are limited by the
    anonymous rate alone: DRF's user throttle would also count them, by
    address, against this rate, keeping a second history per request."""

    def get_cache_key(self, request, view):
        if not request.user.is_authenticated:
            return None
        return super().get_cache_key(request, view)


class SearchThrottle(FailOpenThrottleMixin, SimpleRateThrottle):
    """Searches have a budget of their own: a request to a list or the export
    that carries a `q` costs far more than one without, so it is also counted
    against THROTTLE_SEARCH per anonymous address, or THROTTLE_SEARCH_USER per
    signed-in user. Requests without `q` are not counted."""

    scope = "search"

    def get_rate(self):
        return settings.THROTTLE_SEARCH  # set per request in allow_request

    def allow_request(self, request, view):
        if not request.query_params.get("q") or getattr(view, "action", None) not in (
            None,  # a plain view: the export
            "list",
        ):
            return True
        user = request.user.is_authenticated
        self.rate = settings.THROTTLE_SEARCH_USER if user else settings.THROTTLE_SEARCH
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


# Pagination -----------------------------------------------------------------


class KeysetPagination(BasePagination):
    """Cursor pagination by keyset: each page continues strictly after the last
    row of the previous one, on an index, so a page deep in millions of rows
    costs what the first one does, and rows inserted meanwhile neither repeat
    nor shift pages.

    A view names its orderings: `orderings = {"date": ("date_sort", "id"), ...}`
    (every tuple ends with a unique field, all in one direction) and its
    `default_ordering`. The cursor is opaque; it is only valid with the ordering
    it was issued for.
    """

    page_size = 50
    max_page_size = 500
    query_parameters = ("cursor", "page_size", "ordering")

    def paginate_queryset(self, queryset, request, view=None):
        rows = list(self.page_queryset(queryset, request, view))
        return self.finish(rows, getattr)

    def page_queryset(self, queryset, request, view):
        """The page's queryset, not yet run: ordered, after the cursor, and one
        row longer than the page (the extra row says whether a next page exists).
        Call `finish()` with its rows."""
        self.request = request
        name = request.query_params.get("ordering", view.default_ordering)
        if name not in view.orderings:
            raise InvalidQuery(
                {
                    "ordering": [
                        f"Unknown ordering {name!r}; use one of {', '.join(view.orderings)}."
                    ]
                }
            )
        fields = view.orderings[name]
        size = self._page_size(request)
        queryset = queryset.order_by(*fields)
        position = self._decode(request.query_params.get("cursor"), name, len(fields))
        if position is not None:
            queryset = queryset.filter(self._after(queryset.model, fields, position))
        self.ordering, self.fields, self.size = name, fields, size
        return queryset[: size + 1]

    def finish(self, rows: list, value: Callable[[Any, str], Any]) -> list:
        """The page's rows, and the next cursor taken from the last of them:
        `value(row, field)` reads an ordering field of a row."""
        self.next_position = None
        if len(rows) > self.size:
            rows = rows[: self.size]
            last = rows[-1]
            self.next_position = [_cursor_value(value(last, f.lstrip("-"))) for f in self.fields]
        return rows

    def order_by_sql(self, alias: str) -> str:
        """The page's ordering as SQL over the table alias `alias`."""
        return ", ".join(
            f"{alias}.{f.lstrip('-')} {'DESC' if f.startswith('-') else 'ASC'}" for f in self.fields
        )

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "results": data})

    def get_next_link(self) -> str | None:
        if self.next_position is None:
            return None
        token = json.dumps({"o": self.ordering, "v": self.next_position}, separators=(",", ":"))
        cursor = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)

    def _page_size(self, request) -> int:
        return page_size_from(
            request.query_params.get("page_size"), self.page_size, self.max_page_size
        )

    def _decode(self, cursor: str | None, ordering: str, arity: int) -> list | None:
        if not cursor:
            return None
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            token = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise self._invalid_cursor() from None
        if (
            not isinstance(token, dict)
            or token.get("o") != ordering
            or not isinstance(token.get("v"), list)
            or len(token["v"]) != arity
        ):
            raise self._invalid_cursor()
        return token["v"]

    @staticmethod
    def _invalid_cursor() -> InvalidQuery:
        return InvalidQuery(
            {"cursor": ["Invalid cursor; use the `next` link of a page with the same ordering."]}
        )

    @classmethod
    def _after(cls, model: type[models.Model], fields: tuple[str, ...], position: list) -> RawSQL:
        table = model._meta.db_table
        columns, params = [], []
        for name, raw in zip(fields, position, strict=True):
            field = model._meta.get_field(name.lstrip("-"))
            value = _cursor_position(getattr(field, "output_field", None) or field, raw)
            if value is None:
                raise cls._invalid_cursor()
            params.append(value)
            columns.append(f'"{table}"."{field.column}"')
        operator = "<" if fields[0].startswith("-") else ">"
        placeholders = ", ".join(["%s"] * len(params))
        return RawSQL(
            f"({', '.join(columns)}) {operator} ({placeholders})",
            params,
            output_field=models.BooleanField(),
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page, or null on the last page.",
                    "example": "https://ledger.example.org/api/v1/events/?cursor=eyJvIjoiaWQiLCJ2IjpbNTBdfQ",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "Opaque position from a page's `next` link.",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "in": "query",
                "required": False,
                "description": f"Rows per page, 1 to {self.max_page_size} "
                f"(default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
            {
                "name": "ordering",
                "in": "query",
                "required": False,
                "description": getattr(view, "ordering_description", "Order of the rows."),
                "schema": {
                    "type": "string",
                    "enum": list(view.orderings),
                    "x-enum-varnames": [
                        name.lstrip("-").upper() + ("_DESC" if name.startswith("-") else "_ASC")
                        for name in view.orderings
                    ],
                    "default": view.default_ordering,
                },
            },
        ]


def _cursor_value(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


_BIGINT = range(-(2**63), 2**63)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _cursor_position(field: models.Field, raw: Any) -> Any:
    """A cursor's value for an ordering field, as the database compares it, or
    None when it is not one `_cursor_value` could have written: a cursor is
    only ever decoded from our own `next` links, so anything else is refused
    before it reaches a query."""
    if isinstance(field, models.IntegerField | models.AutoField):
        return raw if type(raw) is int and raw in _BIGINT else None
    if isinstance(field, models.DateTimeField):
        try:
            return datetime.datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            return None
    if isinstance(field, models.DateField):
        if not isinstance(raw, str) or not _ISO_DATE.fullmatch(raw):
            return None
        try:
            return datetime.date.fromisoformat(raw)
        except ValueError:
            return None
    if isinstance(field, models.CharField | models.TextField):
        return raw if isinstance(raw, str) and "\x00" not in raw else None
    return None  # an ordering field of a type cursors do not carry yet


# OpenAPI --------------------------------------------------------------------

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "An RFC 9457 problem document, as every error of the API is answered.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A URI identifying the kind of problem."},
        "title": {"type": "string", "description": "Short summary of the kind of problem."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {"type": "string", "description": "What went wrong in this occurrence."},
        "instance": {"type": "string", "description": "The path of the request."},
        "retry_after": {"type": "integer", "description": "Seconds to wait (429 only)."},
        "current_revision": {
            "type": "integer",
            "description": "The record's current revision (412 only).",
        },
        "history_url": {
            "type": "string",
            "format": "uri",
            "description": "Where the deleted record's history is (410 only).",
        },
        "errors": {
            "type": "array",
            "description": "Validation errors (400), one per invalid value.",
            "items": {"$ref": "#/components/schemas/ProblemError"},
        },
    },
}

PROBLEM_ERROR_SCHEMA = {
    "type": "object",
    "description": "One invalid value of a request.",
    "required": ["detail", "code"],
    "properties": {
        "pointer": {
            "type": "string",
            "description": "JSON pointer (RFC 6901) to the invalid body value.",
        },
        "parameter": {"type": "string", "description": "Name of the invalid query parameter."},
        "header": {"type": "string", "description": "Name of the invalid request header."},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
}

_ERROR_RESPONSES = {
    "400": "The request is malformed or did not validate.",
    "401": "Authentication is required for this operation.",
    "403": "The client is not allowed to do this.",
    "404": "No such resource.",
    "405": "The method is not allowed here.",
    "409": "The change conflicts with the stored data.",
    "410": "The record was deleted; see history_url.",
    "412": "If-Match names an old revision; current_revision says the new one.",
    "422": "The Idempotency-Key was used with a different body.",
    "428": "If-Match is required.",
    "413": "The request body is too large.",
    "415": "The request body is not JSON.",
    "429": "Too many requests; wait `Retry-After` seconds.",
    "500": "The server failed.",
    "503": "The service or its database is unavailable.",
}
_WRITE_ERRORS = ["400", "401", "403", "404", "409", "410", "412", "413", "415", "428", "429"]
_WRITE_ERRORS += ["500", "503"]
_ERRORS_BY_METHOD = {
    "get": ["400", "404", "410", "429", "500", "503"],
    "post": ["400", "401", "403", "409", "413", "415", "422", "429", "500", "503"],
    "put": _WRITE_ERRORS,
    "patch": _WRITE_ERRORS,
    "delete": ["400", "401", "403", "404", "409", "410", "412", "428", "429", "500", "503"],
}


def problem_responses_hook(result, generator, request, public):
    """Document the shared Problem component as the error response of every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ProblemError"] = PROBLEM_ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            for code in _ERRORS_BY_METHOD.get(method, []):
                if code in ("404", "410") and "{" not in _path_of(result, path_item):
                    continue  # lists are never missing
                responses.setdefault(
                    code,
                    {
                        "description": _ERROR_RESPONSES[code],
                        "content": {PROBLEM_CONTENT_TYPE: {"schema": ref}},
                    },
                )
    return result


def _path_of(result: dict, path_item: dict) -> str:
    return next(path for path, item in result["paths"].items() if item is path_item)


def client_hygiene_hook(result, generator, request, public):
    """Make generated clients pleasant: readable names for the blank and null
    choices drf-spectacular emits, reads marked as open to anonymous clients, and
    path parameters described."""
    schemas = result.get("components", {}).get("schemas", {})
    if "BlankEnum" in schemas:
        schemas["BlankEnum"]["x-enum-varnames"] = ["BLANK"]
    if "NullEnum" in schemas:
        schemas["NullEnum"]["x-enum-varnames"] = ["NULL"]
    path_descriptions = {"id": "The record's id.", "revision": "A revision of the record."}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method == "get" and {} not in operation.setdefault("security", []):
                operation["security"].append({})
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in path_descriptions:
                    parameter.setdefault("description", path_descriptions[parameter["name"]])
    return result


def single_response_examples_hook(result, generator, request, public):
    """Give each response its example as `example`, not an `examples` map of one:
    openapi-generator warns about response `examples` maps."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    examples = media.get("examples")
                    if examples and len(examples) == 1:
                        media["example"] = next(iter(examples.values()))["value"]
                        del media["examples"]
    return result
