"""Counts of events and statements: totals, time series and group-bys, with
every filter of the list they count (GET /api/v1/events/counts/ and
/api/v1/statements/counts/; docs/api.md, "Counts").

What a bucket counts, decided once here:

- A record falls in the period (day, month, year) of `date_sort`, its earliest
  known date, when its date is known to that period: at day precision for
  days; day or month for months; day, month or year for years. The others are
  left out of the series and counted as `undated`: those of precision
  `unknown` (only a bound is known, such as the report's date: "before 9 Nov
  2023"), and those known less precisely than the period (a year in a monthly
  series, a decade in a yearly one). A record that spans several periods
  counts once, in its first.
- A time series has every period from the first to the last with records (or
  from `date_after` to `date_before`, when wider), those with none at 0.
- An event counts once for each distinct actor taking part in it, whatever its
  roles, so the actor buckets may add up to more than `total`; an event with no
  participant is in the bucket whose actor is null, as one with no place (or a
  place without a country) is in the null place (country) bucket.
- Open-ended dimensions (actor, place, country, speaker) keep their `limit`
  values with the most records, so that an answer stays bounded.
"""

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models import Case, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import NullIf
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from actors.models import Actor
from events.filters import (
    EventEvidenceSearchFilterSet,
    EventFilterSet,
    EventTextSearchFilterSet,
    StatementFilterSet,
)
from events.models import (
    QUAD_CLASS,
    Event,
    EventType,
    Place,
    QuadClass,
    Statement,
    StatementKind,
)
from events.representations import json_response, plain
from events.views import SEARCH_THROTTLES, search_time_limit
from ledger.api.errors import InvalidQuery
from ledger.api.filters import StrictQueryMixin
from ledger.api.inputs import date_from_iso
from ledger.models import DatePrecision
from ledger.routing import reading as connection  # the database this request reads

MAX_DIMENSIONS = 2
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# Buckets in one answer, empty periods included: a daily series of 50 years fits.
MAX_BUCKETS = 20_000

TIME_UNITS = ("day", "month", "year")
# The precisions a date must have to be placed in a period of each unit.
PLACED = {
    "day": [DatePrecision.DAY],
    "month": [DatePrecision.DAY, DatePrecision.MONTH],
    "year": [DatePrecision.DAY, DatePrecision.MONTH, DatePrecision.YEAR],
}


@dataclass(frozen=True)
class Dimension:
    """What records can be counted by: `expression` gives a record's value
    (several rows for a record with several, when `multi`)."""

    name: str
    expression: Any
    # Open-ended: only the `limit` values with the most records are kept.
    limited: bool = False
    # A record may have several values: counted once for each.
    multi: bool = False
    # Values are ids of these records, shown as {id, slug, name}.
    records: type[models.Model] | None = None

    @property
    def is_time(self) -> bool:
        return self.name in TIME_UNITS


def _time_dimensions() -> list[Dimension]:
    # Grouped by date_sort first, then by period: truncating once per distinct
    # day rather than once per record (docs/performance.md, "Counts").
    return [Dimension(unit, F("date_sort")) for unit in TIME_UNITS]


_QUAD_CLASS = Case(
    *[
        When(type__in=[t for t, q in QUAD_CLASS.items() if q == quad], then=Value(quad.value))
        for quad in QuadClass
    ],
    default=Value(None),
    output_field=models.CharField(),
)

EVENT_DIMENSIONS = {
    d.name: d
    for d in [
        *_time_dimensions(),
        Dimension("type", F("type")),
        Dimension("quad_class", _QUAD_CLASS),
        Dimension("actor", F("participants__actor"), limited=True, multi=True, records=Actor),
        Dimension("country", NullIf(F("place__country"), Value("")), limited=True),
        Dimension("place", F("place"), limited=True, records=Place),
    ]
}

STATEMENT_DIMENSIONS = {
    d.name: d
    for d in [
        *_time_dimensions(),
        Dimension("kind", F("kind")),
        Dimension("speaker", F("speaker"), limited=True, records=Actor),
    ]
}


# Input ------------------------------------------------------------------------


def _by_error(message: str, code: str) -> InvalidQuery:
    return InvalidQuery({"by": [ErrorDetail(message, code=code)]})


def dimensions_from(values: Sequence[str], accepted: dict[str, Dimension]) -> list[Dimension]:
    """The dimensions `by` names, comma-separated or repeated: one or two,
    each known, none twice, at most one of them a time unit."""
    names = [part.strip() for value in values for part in value.split(",")]
    choices = ", ".join(accepted)
    if not names or not any(names):
        raise _by_error(
            f"Name what to count by: one or two of {choices} (e.g. by=month or by=month,type).",
            "required",
        )
    if not all(names):
        raise _by_error(
            f"An empty dimension in {','.join(names)!r}: name one or two of {choices}.",
            "empty_dimension",
        )
    unknown = [name for name in names if name not in accepted]
    if unknown:
        shown = ", ".join(repr(name) for name in unknown)
        raise _by_error(
            f"Not a dimension to count by: {shown}. Accepted: {choices}.", "invalid_choice"
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise _by_error(f"Given more than once: {', '.join(twice)}.", "duplicate_dimension")
    if len(names) > MAX_DIMENSIONS:
        raise _by_error(
            f"Count by at most {MAX_DIMENSIONS} dimensions; given {len(names)} "
            f"({', '.join(names)}).",
            "too_many_dimensions",
        )
    times = [name for name in names if accepted[name].is_time]
    if len(times) > 1:
        raise _by_error(
            f"Count by at most one time unit ({', '.join(TIME_UNITS)}); given "
            f"{' and '.join(times)}.",
            "two_time_units",
        )
    return [accepted[name] for name in names]


def limit_from(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidQuery({"limit": [f"Must be a whole number from 1 to {MAX_LIMIT}."]})
    return int(raw)


# Periods ----------------------------------------------------------------------


def period_of(day: datetime.date, unit: str) -> datetime.date:
    if unit == "year":
        return day.replace(month=1, day=1)
    if unit == "month":
        return day.replace(day=1)
    return day


def periods_between(first: datetime.date, last: datetime.date, unit: str) -> int:
    if unit == "year":
        return last.year - first.year + 1
    if unit == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return (last - first).days + 1


def periods(first: datetime.date, last: datetime.date, unit: str) -> Iterable[datetime.date]:
    """Every period from the one of `first` to the one of `last`, each as its first day."""
    current = period_of(first, unit)
    while current <= last:
        yield current
        if unit == "day":
            current += datetime.timedelta(days=1)
        elif unit == "month":
            current = (current + datetime.timedelta(days=32)).replace(day=1)
        else:
            current = current.replace(year=current.year + 1)


# Counting ---------------------------------------------------------------------


def _rows(
    queryset: QuerySet,
    dims: Sequence[Dimension],
    *,
    names: Sequence[str] | None = None,
    top: int | None = None,
) -> list[tuple]:
    """(value of each dimension, count) for every combination with records,
    or for the `top` with the most records, most first; a time dimension's
    value is its period, None for records it cannot place.

    Records are grouped by their day and precision first, then by period:
    truncating once per distinct day rather than once per record, on an index
    of both (docs/performance.md, "Counts"). A record with several values of a
    dimension (an event's actors) is one row per value, made distinct first:
    cheaper than counting distinct records in each group. `names`: the
    annotations of `queryset` that hold each dimension's value."""
    names = names or [f"k{i}" for i in range(len(dims))]
    keys = list(names)
    if any(d.is_time for d in dims):
        keys.append("date_precision")
    if any(d.multi for d in dims):
        inner = queryset.values("pk", *keys).distinct().order_by()
        counted = "count(*)"
    else:
        inner = queryset.values(*keys).annotate(n=Count("*")).order_by()
        counted = "sum(s.n)::bigint"
    try:
        sql, params = inner.query.sql_with_params()
    except EmptyResultSet:  # a condition no row meets (an empty list of values): none
        return []
    columns, outer_params = [], []
    for i, dim in enumerate(dims):
        if dim.is_time:
            columns.append(
                f"CASE WHEN s.date_precision = ANY(%s) "
                f"THEN date_trunc('{dim.name}', s.{names[i]}::timestamp)::date END"
            )
            outer_params.append([str(p) for p in PLACED[dim.name]])
        else:
            columns.append(f"s.{names[i]}")
    positions = ", ".join(str(i + 1) for i in range(len(dims)))
    query = f"SELECT {', '.join(columns)}, {counted} FROM ({sql}) s GROUP BY {positions}"
    if top is not None:
        query += f" ORDER BY {len(dims) + 1} DESC, {positions} NULLS LAST LIMIT {int(top)}"
    with connection.cursor() as cursor:
        cursor.execute(query, [*outer_params, *params])
        return cursor.fetchall()


def _labels(dim: Dimension, values: Iterable) -> dict:
    """How each value of `dim` is shown in a bucket's key."""
    values = set(values)
    if dim.records is None:
        return {value: value for value in values}
    records = dim.records._default_manager.filter(pk__in=values - {None})
    labels: dict = {
        pk: {"id": pk, "slug": slug, "name": name}
        for pk, slug, name in records.values_list("pk", "slug", "name")
    }
    labels[None] = None
    return labels


def counts(
    queryset: QuerySet,
    dims: Sequence[Dimension],
    *,
    limit: int,
    date_after: datetime.date | None = None,
    date_before: datetime.date | None = None,
) -> dict:
    """The records of `queryset` counted by `dims` (see the module's docstring)."""
    annotated = queryset.annotate(**{f"k{i}": d.expression for i, d in enumerate(dims)})
    truncated = False
    ranks: dict[int, dict] = {}
    rows: list[tuple] | None = None
    for i, dim in enumerate(dims):
        if not dim.limited:
            continue
        top = _rows(annotated, [dim], names=[f"k{i}"], top=limit + 1)
        truncated = truncated or len(top) > limit
        top = top[:limit]
        ranks[i] = {value: rank for rank, (value, _) in enumerate(top)}
        if len(dims) == 1:
            rows = [(value, n) for value, n in top]
        else:
            kept = Q(**{f"k{i}__in": [value for value, _ in top if value is not None]})
            if any(value is None for value, _ in top):
                kept |= Q(**{f"k{i}__isnull": True})
            annotated = annotated.filter(kept)
    if rows is None:
        rows = _rows(annotated, dims)

    # Empty periods: every period between the first and the last, for every
    # combination of the other dimension's values.
    time = next((i for i, d in enumerate(dims) if d.is_time), None)
    counted = {tuple(row[:-1]): row[-1] for row in rows}
    undated = 0
    if time is not None:
        unplaced = {key: n for key, n in counted.items() if key[time] is None}
        undated = sum(unplaced.values())
        counted = {key: n for key, n in counted.items() if key not in unplaced}
    keys = list(counted)
    if time is not None:
        unit = dims[time].name
        known = [key[time] for key in keys]
        if date_after is not None:
            known.append(period_of(date_after, unit))
        if date_before is not None:
            known.append(period_of(date_before, unit))
        others = sorted({key[:time] + key[time + 1 :] for key in keys}, key=repr)
        if not others and len(dims) == 1 and date_after is not None and date_before is not None:
            others = [()]  # bounded and empty: a series of zeros (of one dimension only:
            # with a second, no value of it has a record to make a series of)
        if known and others:
            first, last = min(known), max(known)
            size = periods_between(first, last, unit) * len(others)
            if size > MAX_BUCKETS:
                raise _by_error(
                    f"Counting by {', '.join(d.name for d in dims)} from {first} to {last} "
                    f"gives {size:,} buckets; at most {MAX_BUCKETS:,} are answered. Count by "
                    "a longer period, narrow the dates (date_after, date_before) or lower "
                    "`limit`.",
                    "too_many_buckets",
                )
            keys = [
                (*other[:time], period, *other[time:])
                for other in others
                for period in periods(first, last, unit)
            ]
    if len(keys) > MAX_BUCKETS:
        raise _by_error(
            f"Counting by {', '.join(d.name for d in dims)} gives {len(keys):,} buckets; at "
            f"most {MAX_BUCKETS:,} are answered. Narrow the filters or lower `limit`.",
            "too_many_buckets",
        )

    # Order: periods in time order; other values by their records, most first.
    for i, dim in enumerate(dims):
        if dim.is_time or i in ranks:
            continue
        totals: dict = defaultdict(int)
        for key, n in counted.items():
            totals[key[i]] += n
        ordered = sorted(totals, key=lambda v: (-totals[v], v is None, str(v)))
        ranks[i] = {value: rank for rank, value in enumerate(ordered)}

    def order(key: tuple) -> tuple:
        return tuple(key[i] if d.is_time else ranks[i][key[i]] for i, d in enumerate(dims))

    keys.sort(key=order)
    labels = {
        i: _labels(dim, (key[i] for key in keys)) for i, dim in enumerate(dims) if not dim.is_time
    }
    buckets = [
        {
            "key": {
                dim.name: key[i].isoformat() if dim.is_time else labels[i][key[i]]
                for i, dim in enumerate(dims)
            },
            "count": counted.get(key, 0),
        }
        for key in keys
    ]
    if truncated or any(d.multi for d in dims):
        # Buckets may count a record more than once, or leave some out.
        total = queryset.count()
        if time is not None:
            undated = queryset.exclude(date_precision__in=PLACED[dims[time].name]).count()
    else:
        total = sum(counted.values()) + undated
    return {
        "by": [d.name for d in dims],
        "total": total,
        "undated": undated,
        "limit": limit,
        "truncated": truncated,
        "buckets": buckets,
    }


# Representations ----------------------------------------------------------------


class CountedRecordSerializer(serializers.Serializer):
    """An actor or a place a bucket counts."""

    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


_PERIOD_HELP = "The {} counted, as its first day."


class EventCountKeySerializer(serializers.Serializer):
    """The values a bucket counts: one field for each dimension of `by`."""

    day = serializers.DateField(required=False, help_text=_PERIOD_HELP.format("day"))
    month = serializers.DateField(required=False, help_text=_PERIOD_HELP.format("month"))
    year = serializers.DateField(required=False, help_text=_PERIOD_HELP.format("year"))
    type = serializers.ChoiceField(choices=EventType.choices, required=False)
    quad_class = serializers.ChoiceField(
        choices=QuadClass.choices,
        required=False,
        allow_null=True,
        help_text="Null for a type outside PLOVER's quad classes (DISSOLVE).",
    )
    actor = CountedRecordSerializer(
        required=False, allow_null=True, help_text="Null: events with no participant."
    )
    country = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="The country of the event's place; null: no place, or none known.",
    )
    place = CountedRecordSerializer(
        required=False, allow_null=True, help_text="Null: events with no place."
    )


class EventCountBucketSerializer(serializers.Serializer):
    key = EventCountKeySerializer()
    count = serializers.IntegerField(min_value=0)


class _CountsSerializer(serializers.Serializer):
    total = serializers.IntegerField(
        min_value=0, help_text="Records matching the filters, each once."
    )
    undated = serializers.IntegerField(
        min_value=0,
        help_text="Records a time series leaves out, their date not known to its period "
        "(precision unknown, or coarser than the period); 0 without a time unit.",
    )
    limit = serializers.IntegerField(
        help_text="Values kept of an open-ended dimension (actor, place, country, speaker)."
    )
    truncated = serializers.BooleanField(
        help_text="Whether an open-ended dimension had more values than `limit`: those "
        "with fewer records are left out."
    )


class EventCountsSerializer(_CountsSerializer):
    by = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_DIMENSIONS)))
    buckets = EventCountBucketSerializer(many=True)


class StatementCountKeySerializer(serializers.Serializer):
    """The values a bucket counts: one field for each dimension of `by`."""

    day = serializers.DateField(required=False, help_text=_PERIOD_HELP.format("day"))
    month = serializers.DateField(required=False, help_text=_PERIOD_HELP.format("month"))
    year = serializers.DateField(required=False, help_text=_PERIOD_HELP.format("year"))
    kind = serializers.ChoiceField(choices=StatementKind.choices, required=False)
    speaker = CountedRecordSerializer(required=False)


class StatementCountBucketSerializer(serializers.Serializer):
    key = StatementCountKeySerializer()
    count = serializers.IntegerField(min_value=0)


class StatementCountsSerializer(_CountsSerializer):
    by = serializers.ListField(child=serializers.ChoiceField(choices=list(STATEMENT_DIMENSIONS)))
    buckets = StatementCountBucketSerializer(many=True)


# Views --------------------------------------------------------------------------


def _by_parameter(dimensions: dict[str, Dimension], example: str) -> OpenApiParameter:
    return OpenApiParameter(
        "by",
        str,
        required=True,
        many=True,
        explode=True,
        enum=list(dimensions),
        description="What to count by: one or two dimensions, repeated (by=month&by=type) "
        f"or comma-separated (by={example}); at most one time unit (day, month, year).",
    )


_LIMIT_PARAMETER = OpenApiParameter(
    "limit",
    int,
    description=f"Values kept of an open-ended dimension, those with the most records: 1 to "
    f"{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
)

_COUNTING = (
    "A record falls in the period of its earliest known date (`date_sort`: `date_start`, or "
    "`date_end` when only the end is known) when its date is known to that period (day "
    "precision for days; day or month for months; day, month or year for years); the "
    "others are counted in `undated`, not in the series: precision `unknown` (only a bound "
    "is known, such as the report's date) or coarser than the period. A record that spans "
    "periods counts once, in the first. A time "
    "series has every period from the first to the last with records, or from `date_after` "
    "to `date_before` when wider, those with none at 0; with a second dimension, every "
    "period for each of its values. Other dimensions are ordered by their counts, most "
    "first. Open-ended dimensions keep their `limit` values with the most records "
    f"(`truncated` says whether any were left out). At most {MAX_BUCKETS:,} buckets are "
    "answered (400 beyond: a longer period or narrower dates)."
)


class CountsView(StrictQueryMixin, GenericAPIView):
    """Counts of the records a list's filters select, by one or two dimensions."""

    pagination_class = None
    throttle_classes = SEARCH_THROTTLES
    http_method_names = ["get", "head", "options"]
    query_parameters = {"get": ("by", "limit")}
    repeatable_parameters = ("by",)
    dimensions: dict[str, Dimension] = {}

    def counted(self, request) -> QuerySet:
        return self.filter_queryset(self.get_queryset())

    def get(self, request):
        dims = dimensions_from(request.query_params.getlist("by"), self.dimensions)
        limit = limit_from(request.query_params.get("limit"))
        searching = bool(request.query_params.get("q"))
        with search_time_limit(searching):
            records = self.counted(request)
            data = counts(
                records,
                dims,
                limit=limit,
                date_after=_date(request, "date_after"),
                date_before=_date(request, "date_before"),
            )
        return json_response(request, data) or Response(plain(data))


def _date(request, name: str) -> datetime.date | None:
    # Read after the filters have validated it.
    raw = request.query_params.get(name)
    return date_from_iso(raw) if raw else None


EVENT_COUNTS_EXAMPLE = {
    "by": ["month"],
    "total": 4,
    "undated": 1,
    "limit": DEFAULT_LIMIT,
    "truncated": False,
    "buckets": [
        {"key": {"month": "2020-09-01"}, "count": 2},
        {"key": {"month": "2020-10-01"}, "count": 0},
        {"key": {"month": "2020-11-01"}, "count": 1},
    ],
}


class EventCountsView(CountsView):
    queryset = Event.objects.all()
    filterset_class = EventFilterSet
    dimensions = EVENT_DIMENSIONS

    def counted(self, request) -> QuerySet:
        events = self.get_queryset()
        if not request.query_params.get("q"):
            return self.filter_queryset(events)
        # A search is two conditions, as on the event list: matches by title and
        # summary, and by evidence, each planned on its own index; the events
        # counted are their union.
        parts = []
        for filterset_class in (EventTextSearchFilterSet, EventEvidenceSearchFilterSet):
            self.filterset_class = filterset_class  # what filter_queryset() applies
            parts.append(self.filter_queryset(events).values("id"))
        self.filterset_class = EventFilterSet
        return events.filter(pk__in=parts[0].union(parts[1]))

    @extend_schema(
        operation_id="events_counts",
        summary="Count events over time or by type, actor, country or place",
        description="The events the filters select (the same as the event list's), counted "
        "by one or two dimensions: `day`, `month`, `year` (a time series), `type`, "
        "`quad_class`, `actor` (an event counts once for each distinct actor taking part, "
        "so these buckets may add up to more than `total`), `country` and `place` (of the "
        "event's place). Null keys count the events with no participant, place or country. "
        + _COUNTING,
        filters=True,
        parameters=[_by_parameter(EVENT_DIMENSIONS, "month,type"), _LIMIT_PARAMETER],
        responses={200: EventCountsSerializer},
        examples=[OpenApiExample("Monthly counts", value=EVENT_COUNTS_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        return super().get(request)


class StatementCountsView(CountsView):
    queryset = Statement.objects.all()
    filterset_class = StatementFilterSet
    dimensions = STATEMENT_DIMENSIONS

    @extend_schema(
        operation_id="statements_counts",
        summary="Count statements over time or by kind or speaker",
        description="The statements the filters select (the same as the statement list's), "
        "counted by one or two dimensions: `day`, `month`, `year` (a time series), `kind` "
        "and `speaker`. " + _COUNTING,
        filters=True,
        parameters=[_by_parameter(STATEMENT_DIMENSIONS, "month,kind"), _LIMIT_PARAMETER],
        responses={200: StatementCountsSerializer},
    )
    def get(self, request):
        return super().get(request)
