"""Query filters of the event, statement and place lists, and full-text search."""

import re

import django_filters as filters
from django import forms
from django.contrib.postgres.search import SearchQuery
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from drf_spectacular.utils import extend_schema_field

from actors.models import Actor
from events.models import (
    Event,
    EventContext,
    EventStatus,
    EventType,
    ParticipantRole,
    Place,
    PlaceKind,
    ReviewStatus,
    Statement,
    StatementActor,
    StatementActorRole,
    StatementEvent,
    StatementKind,
)
from ledger.api.filters import (
    AnyOfFilter,
    CountryFilter,
    DateFilter,
    FilterSet,
    IdFilter,
    IdOrSlugFilter,
    IsoDateField,
)
from ledger.models import SEARCH_CONFIG
from sources.models import Evidence


def search_query(text: str) -> SearchQuery:
    """Web-search syntax: words, "quoted phrases", OR, -excluded, and word*
    prefixes."""
    return WebSearchQuery(text)


# A chunk of a search as websearch_to_tsquery reads it: an optional minus, then
# a "quoted phrase" (an unclosed quote runs to the end) or a run of other
# characters up to a space or a quote.
_CHUNK = re.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')
# A prefix term: letters and digits ending in * (`invas*`).
_PREFIX = re.compile(r"([^\W_]+)\*+")


def tsquery_sql(text: str) -> tuple[str, list]:
    """The tsquery of a search `text`, as SQL with its parameters.

    Without a prefix term it is websearch_to_tsquery(text), as it always was.
    With one (`invas*`), the text is read chunk by chunk as websearch_to_tsquery
    reads it (OR binds tighter than the implicit AND, `-` excludes) and each
    chunk becomes a tsquery of its own, joined with the tsquery operators: a
    prefix is to_tsquery('simple', quote_literal(word) || ':*') over the word's
    letters and digits, any other chunk websearch_to_tsquery(chunk). No user
    text is ever read as tsquery syntax, so no search is a syntax error.

    A prefix is matched against the stored stems unstemmed: `invas*` finds
    "invasion" and "invasions" (stem `invas`), not "invaded" (`invad`)."""
    chunks = [(minus, phrase, word) for minus, phrase, word in _CHUNK.findall(text)]
    if not any(word and _PREFIX.fullmatch(word.lstrip("-")) for _, _, word in chunks):
        return "websearch_to_tsquery(%s::regconfig, %s)", [SEARCH_CONFIG, text]
    groups: list[list[tuple[str, list]]] = [[]]
    joined = False  # the last chunk was OR, between two terms
    for minus, phrase, word in chunks:
        if not minus and word.lower() == "or" and groups[-1]:
            joined = True
            continue
        prefix = _PREFIX.fullmatch(word.lstrip("-")) if word else None
        if prefix:
            negated = bool(minus) or word.startswith("-")
            term = ("to_tsquery('simple', quote_literal(%s) || ':*')", [prefix.group(1).lower()])
        else:
            negated = bool(minus)
            chunk = f'"{phrase}"' if word == "" else word
            term = ("websearch_to_tsquery(%s::regconfig, %s)", [SEARCH_CONFIG, chunk])
        if negated:
            term = (f"(!! {term[0]})", term[1])
        if joined or not groups[-1]:
            groups[-1].append(term)
        else:
            groups.append([term])
        joined = False
    parts, params = [], []
    for group in groups:
        if group:
            parts.append("(" + " || ".join(sql for sql, _ in group) + ")")
            params.extend(p for _, group_params in group for p in group_params)
    return "(" + " && ".join(parts) + ")", params


class WebSearchQuery(SearchQuery):
    """A search in the API's syntax (`tsquery_sql`), usable wherever Django
    takes a SearchQuery (`search_vector=...`)."""

    def __init__(self, text: str):
        super().__init__(text, search_type="websearch", config=SEARCH_CONFIG)
        self.text = text

    def as_sql(self, compiler, connection, function=None, template=None):
        sql, params = tsquery_sql(self.text)
        return sql, params


# Bounds of a search (`q`). The planner's worst case is a walk of every event
# (and every evidence span) in date order, testing each against the query: it
# takes that path when it expects matches to be common and they are not (an
# OR of many words, "russia -russia"). Each row then costs about one check per
# word of the query, so the words are capped; the walk itself is cut by
# SEARCH_TIMEOUT_MS (docs/api.md, "Search").
SEARCH_MAX_LENGTH = 200
SEARCH_MAX_WORDS = 8
SEARCH_MAX_ORS = 4
SEARCH_MAX_PHRASES = 2
SEARCH_BOUNDS = (
    f"at most {SEARCH_MAX_LENGTH} characters, {SEARCH_MAX_WORDS} words, "
    f"{SEARCH_MAX_ORS} ORs and {SEARCH_MAX_PHRASES} quoted phrases"
)

# A quoted phrase; an unclosed quote runs to the end, as websearch_to_tsquery reads it.
_PHRASE = re.compile(r'"([^"]*)"?')
# A word as PostgreSQL's parser splits text: letters and digits ("wi-fi" is two).
_WORD = re.compile(r"[^\W_]+")


def search_bounds_error(text: str) -> forms.ValidationError | None:
    """Why `text` is refused as a search, or None: longer than
    SEARCH_MAX_LENGTH characters, more than SEARCH_MAX_WORDS words (in phrases
    and excluded ones too), more than SEARCH_MAX_ORS ORs or SEARCH_MAX_PHRASES
    quoted phrases of several words."""
    if len(text) > SEARCH_MAX_LENGTH:
        return forms.ValidationError(
            f"A search may be at most {SEARCH_MAX_LENGTH} characters long; this one has "
            f"{len(text)}.",
            code="search_too_long",
        )
    phrases = [p for p in _PHRASE.findall(text) if len(_WORD.findall(p)) > 1]
    ors = sum(1 for token in _PHRASE.sub(" ", text).split() if token.lower() == "or")
    words = len(_WORD.findall(text)) - ors
    if words > SEARCH_MAX_WORDS:
        return forms.ValidationError(
            f"A search may have at most {SEARCH_MAX_WORDS} words; this one has {words}. "
            "Use fewer words, or narrow by other filters (date, actor, type).",
            code="search_too_many_words",
        )
    if ors > SEARCH_MAX_ORS:
        return forms.ValidationError(
            f"A search may use OR at most {SEARCH_MAX_ORS} times; this one uses it {ors} times.",
            code="search_too_many_ors",
        )
    if len(phrases) > SEARCH_MAX_PHRASES:
        return forms.ValidationError(
            f'A search may have at most {SEARCH_MAX_PHRASES} "quoted phrases"; this one has '
            f"{len(phrases)}.",
            code="search_too_many_phrases",
        )
    return None


class SearchField(forms.CharField):
    """A full-text search in web-search syntax, within the bounds above."""

    def validate(self, value):
        super().validate(value)
        error = search_bounds_error(value or "")
        if error is not None:
            raise error


@extend_schema_field({"type": "string", "maxLength": SEARCH_MAX_LENGTH})
class SearchFilter(filters.CharFilter):
    field_class = SearchField


def evidence_matching(text: str) -> QuerySet:
    """Evidence whose quote matches `text`, on the quote's full-text index."""
    return Evidence.objects.filter(search_vector=search_query(text))


class DateIntervalField(forms.CharField):
    """Two dates, START,END (YYYY-MM-DD each, START not after END), cleaned to
    a pair of dates."""

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        halves = value.split(",")
        if len(halves) != 2 or not all(h.strip() for h in halves):
            raise forms.ValidationError(
                "Give two dates, START,END (YYYY-MM-DD,YYYY-MM-DD), e.g. 1990-01-01,1995-12-31.",
                code="invalid",
            )
        start, end = (IsoDateField().to_python(h.strip()) for h in halves)
        if start > end:
            raise forms.ValidationError(
                f"The start ({start}) is after the end ({end}): give START,END.",
                code="empty_range",
            )
        return (start, end)


@extend_schema_field(
    {
        "type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2},\d{4}-\d{2}-\d{2}$",
        "example": "1990-01-01,1995-12-31",
    }
)
class DateIntervalFilter(filters.Filter):
    field_class = DateIntervalField


class DateRangeFilterSet(FilterSet):
    """Records whose date interval overlaps [date_after, date_before]; an open
    end of an interval counts as unbounded. With `date_within`, records whose
    whole known interval lies inside [START, END]; an open end is not known to
    lie inside, so such records are left out."""

    date_after = DateFilter(
        method="filter_date_after", help_text="Records on or after this date (YYYY-MM-DD)."
    )
    date_before = DateFilter(
        method="filter_date_before",
        help_text="Records on or before this date (YYYY-MM-DD); not before date_after.",
    )
    date_within = DateIntervalFilter(
        method="filter_date_within",
        help_text="START,END (YYYY-MM-DD,YYYY-MM-DD): records whose whole interval is known to "
        "lie inside, from date_start on or after START to date_end on or before END; a record "
        "with an open start or end is left out.",
    )
    ranges = (("date_after", "date_before"),)

    def filter_date_after(self, queryset, name, value):
        return queryset.filter(Q(date_end__isnull=True) | Q(date_end__gte=value))

    def filter_date_before(self, queryset, name, value):
        return queryset.filter(Q(date_start__isnull=True) | Q(date_start__lte=value))

    def filter_date_within(self, queryset, name, value):
        start, end = value
        return queryset.filter(date_start__gte=start, date_end__lte=end)


class EventFilterSet(DateRangeFilterSet):
    type = AnyOfFilter(
        choices=EventType.choices, help_text="Event type; repeat for several (type=A&type=B)."
    )
    status = AnyOfFilter(choices=EventStatus.choices, help_text="Status; repeat for several.")
    review_status = AnyOfFilter(
        choices=ReviewStatus.choices, help_text="Review status; repeat for several."
    )
    context = AnyOfFilter(
        choices=EventContext.choices,
        method="filter_context",
        help_text="Has this context (any of them, when repeated).",
    )
    actor = IdOrSlugFilter(
        model=Actor,
        method="filter_actor",
        help_text="Actor id or slug taking part in any role (or in `role`, when given); "
        "repeat for any of several.",
    )
    initiator = IdOrSlugFilter(
        model=Actor,
        method="filter_initiator",
        help_text="Initiator's actor id or slug; repeat for several.",
    )
    target = IdOrSlugFilter(
        model=Actor,
        method="filter_target",
        help_text="Target's actor id or slug; repeat for several.",
    )
    role = AnyOfFilter(
        choices=ParticipantRole.choices,
        method="filter_role",
        help_text="With `actor`: the role that actor plays. Alone: someone plays this role. "
        "Repeat for any of several.",
    )
    country = CountryFilter(
        field_name="place__country",
        help_text="ISO 3166-1 alpha-3 code of the event's place; repeat for several.",
    )
    place = IdOrSlugFilter(
        model=Place, field_name="place_id", help_text="Place id or slug; repeat for several."
    )
    source = IdFilter(method="filter_source", help_text="Cites this source id; repeat for several.")
    q = SearchFilter(
        method="filter_q",
        help_text="Full-text search over titles, summaries and evidence quotes "
        f'(web-search syntax: words, "phrases", OR, -word); {SEARCH_BOUNDS}.',
    )

    class Meta:
        model = Event
        fields = []

    def filter_actor(self, queryset, name, value):
        return queryset.involving(value, roles=self.form.cleaned_data.get("role") or ())

    def filter_initiator(self, queryset, name, value):
        return queryset.involving(value, roles=[ParticipantRole.INITIATOR])

    def filter_target(self, queryset, name, value):
        return queryset.involving(value, roles=[ParticipantRole.TARGET])

    def filter_role(self, queryset, name, value):
        if self.form.cleaned_data.get("actor"):
            return queryset  # applied together with `actor`
        return queryset.involving(roles=value)

    def filter_context(self, queryset, name, value):
        return queryset.filter(context__overlap=value)

    def filter_source(self, queryset, name, value):
        return queryset.filter(
            Exists(Evidence.objects.filter(event=OuterRef("pk"), source_id__in=value))
        )

    # Where `q` looks: "all" (titles and summaries, or evidence quotes), "text"
    # (titles and summaries) or "evidence". The event list runs the two halves
    # as pages of their own and takes the first rows of their union, so that
    # PostgreSQL can plan each for the word's frequency (see EventViewSet.list).
    search_in = "all"

    def filter_q(self, queryset, name, value):
        text = Q(search_vector=search_query(value))
        if self.search_in == "text":
            return queryset.filter(text)
        if self.search_in == "evidence":
            return queryset.filter(Exists(evidence_matching(value).filter(event=OuterRef("pk"))))
        # Both in one condition, the evidence checked event by event: in an OR,
        # PostgreSQL would rather collect every matching span first (a hashed
        # subplan: 200,000 spans for a common word on a million events); OFFSET 0
        # keeps it from turning the EXISTS into that.
        tsquery, params = tsquery_sql(value)
        cited = RawSQL(
            "EXISTS (SELECT 1 FROM events_evidence v WHERE v.event_id = events_event.id "
            f"AND v.search_vector @@ {tsquery} OFFSET 0)",
            params,
            output_field=BooleanField(),
        )
        return queryset.filter(text | Q(cited))


class EventTextSearchFilterSet(EventFilterSet):
    search_in = "text"


class EventEvidenceSearchFilterSet(EventFilterSet):
    search_in = "evidence"


class StatementFilterSet(DateRangeFilterSet):
    speaker = IdOrSlugFilter(
        model=Actor,
        field_name="speaker_id",
        help_text="Speaker's actor id or slug; repeat for several.",
    )
    kind = AnyOfFilter(
        choices=StatementKind.choices, help_text="Speech-act kind; repeat for several."
    )
    review_status = AnyOfFilter(
        choices=ReviewStatus.choices, help_text="Review status; repeat for several."
    )
    target = IdOrSlugFilter(
        model=Actor,
        method="filter_target",
        help_text="Addressed to this actor (id or slug); repeat for several.",
    )
    about_actor = IdOrSlugFilter(
        model=Actor,
        method="filter_about_actor",
        help_text="About this actor (id or slug); repeat for several.",
    )
    about_event = IdFilter(
        method="filter_about_event", help_text="About this event id; repeat for several."
    )
    source = IdFilter(method="filter_source", help_text="Cites this source id; repeat for several.")
    q = SearchFilter(
        method="filter_q",
        help_text="Full-text search over content, verbatim quotes and evidence quotes "
        f'(web-search syntax: words, "phrases", OR, -word); {SEARCH_BOUNDS}.',
    )

    class Meta:
        model = Statement
        fields = []

    def _linked(self, queryset, actor_ids, role):
        links = StatementActor.objects.filter(
            statement=OuterRef("pk"), actor_id__in=actor_ids, role=role
        )
        return queryset.filter(Exists(links))

    def filter_target(self, queryset, name, value):
        return self._linked(queryset, value, StatementActorRole.TARGET)

    def filter_about_actor(self, queryset, name, value):
        return self._linked(queryset, value, StatementActorRole.ABOUT)

    def filter_about_event(self, queryset, name, value):
        return queryset.filter(
            Exists(StatementEvent.objects.filter(statement=OuterRef("pk"), event_id__in=value))
        )

    def filter_source(self, queryset, name, value):
        return queryset.filter(
            Exists(Evidence.objects.filter(statement=OuterRef("pk"), source_id__in=value))
        )

    def filter_q(self, queryset, name, value):
        matching = evidence_matching(value).filter(statement__isnull=False).values("statement_id")
        return queryset.filter(Q(search_vector=search_query(value)) | Q(pk__in=matching))


class PlaceFilterSet(FilterSet):
    kind = AnyOfFilter(choices=PlaceKind.choices, help_text="Place kind; repeat for several.")
    country = CountryFilter(help_text="ISO 3166-1 alpha-3 code; repeat for several.")
    slug = filters.CharFilter(help_text="The place's slug, exactly (e.g. brussels).")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Name contains.")

    class Meta:
        model = Place
        fields = []
