"""Keyset (cursor) pagination of lists, and the cursors of histories and the
change feed."""

import base64
import binascii
import datetime
import json
import re
from collections.abc import Callable
from typing import Any, cast

from django.db import models
from django.db.models.expressions import RawSQL
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from ledger.api.errors import InvalidQuery
from ledger.api.inputs import MAX_ID, page_size_from
from ledger.models import Change

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
        position = self.start(request, view)
        queryset = queryset.order_by(*self.fields)
        if position is not None:
            queryset = queryset.filter(self._after(queryset.model, self.fields, position))
        return queryset[: self.size + 1]

    def start(self, request, view) -> list | None:
        """Read the page's ordering, size and cursor: the cursor's values as it
        wrote them (not yet checked against the fields' types), or None on the
        first page. For a view that runs a page query of its own; call
        `finish()` with its rows."""
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
        self.ordering, self.fields, self.size = name, fields, self._page_size(request)
        return self._decode(request.query_params.get("cursor"), name, len(fields))

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
            raise self.invalid_cursor() from None
        if (
            not isinstance(token, dict)
            or token.get("o") != ordering
            or not isinstance(token.get("v"), list)
            or len(token["v"]) != arity
        ):
            raise self.invalid_cursor()
        return token["v"]

    @staticmethod
    def invalid_cursor() -> InvalidQuery:
        return InvalidQuery(
            {"cursor": ["Invalid cursor; use the `next` link of a page with the same ordering."]}
        )

    @classmethod
    def _after(cls, model: type[models.Model], fields: tuple[str, ...], position: list) -> RawSQL:
        table = model._meta.db_table
        columns, params = [], []
        for name, raw in zip(fields, position, strict=True):
            # A cursor orders by the model's own columns.
            field = cast(models.Field, model._meta.get_field(name.lstrip("-")))
            value = _cursor_position(getattr(field, "output_field", None) or field, raw)
            if value is None:
                raise cls.invalid_cursor()
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


def encode_history_cursor(revision: int) -> str:
    token = json.dumps({"r": revision}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_history_cursor(cursor: str | None) -> int | None:
    """The revision a history page continues below."""
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        revision = value["r"]
        if type(revision) is int and 1 <= revision < 2**31:
            return revision
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, RecursionError):
        pass
    raise InvalidQuery({"cursor": ["Invalid cursor; use the `next` link of a history page."]})


def encode_feed_cursor(commit_seq: int, change_id: int) -> str:
    token = json.dumps({"c": commit_seq, "i": change_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_feed_cursor(cursor: str | None) -> list[int] | None:
    """The (commit_seq, id) position of a cursor. A cursor of the first
    feed, ordered by transaction id, is [txid, id]: it continues from its
    entry, which the feed now orders as it did then."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(value, dict) and value.keys() == {"c", "i"}:
            position = [value["c"], value["i"]]
        elif isinstance(value, list) and len(value) == 2:
            position = value
            if _is_position(value) and value != [0, 0]:
                seq = Change.objects.filter(pk=value[1]).values_list("commit_seq", flat=True)
                position = [next(iter(seq), None), value[1]]
        else:
            position = None
        if _is_position(position):
            return position
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        pass
    raise InvalidQuery({"after": ["Invalid cursor; use the `cursor` of an earlier answer."]})


def _is_position(value) -> bool:
    """Two whole numbers a bigint column can hold (bool is not one)."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(type(v) is int and 0 <= v <= MAX_ID for v in value)
    )
