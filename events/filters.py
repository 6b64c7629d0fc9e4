"""Query filters of the event, statement, source and place lists."""

import copy
import datetime
import re

import django_filters as filters
from django import forms
from django.contrib.postgres.search import SearchQuery
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import QueryDict
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from events.api import ID_TEXT, MAX_ID, date_from_iso
from events.models import (
    COUNTRY_CODE_RE,
    SEARCH_CONFIG,
    Event,
    EventContext,
    EventParticipant,
    EventStatus,
    EventType,
    Evidence,
    ParticipantRole,
    Place,
    PlaceKind,
    ReviewStatus,
    Source,
    Statement,
    StatementActor,
    StatementActorRole,
    StatementEvent,
    StatementKind,
)


class _ShallowFields(dict):
    """A form's fields, copied field by field instead of deeply: a form copies
    its fields for every instance, and filter forms only validate."""

    def __deepcopy__(self, memo):
        return {name: copy.copy(field) for name, field in self.items()}


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet, lighter on every request: its filters are
    copied one by one rather than deeply (a filter's per-request state is its
    model and parent), and its form class is built once per filterset class.
    Deep copies were a fifth of the cost of a filtered event page."""

    # Pairs of (lower bound, upper bound) parameters: the lower must not exceed the upper.
    ranges: tuple[tuple[str, str], ...] = ()

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        # As django-filter's FilterSet.__init__, but for the copy of the filters.
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        self.filters = {name: copy.copy(f) for name, f in self.base_filters.items()}
        for filter_ in self.filters.values():
            filter_.model = queryset.model
            filter_.parent = self
            if filter_.method is not None:
                filter_.method = filter_.method  # a FilterMethod bound to this copy

    def get_form_class(self):
        cls = type(self)
        if "_form_class" not in cls.__dict__:
            fields = {name: filter_.field for name, filter_ in cls.base_filters.items()}
            form = type(f"{cls.__name__}Form", (self._meta.form,), fields)
            form.base_fields = _ShallowFields(form.base_fields)
            cls._form_class = form
        return cls._form_class

    def is_valid(self) -> bool:
        """The form's validation, and each of `ranges`: a range whose start
        comes after its end matches nothing, so it is a mistake, named on both
        parameters."""
        if not super().is_valid():
            return False
        cleaned = self.form.cleaned_data
        for low, high in self.ranges:
            if cleaned.get(low) and cleaned.get(high) and cleaned[low] > cleaned[high]:
                message = f"{low} ({cleaned[low]}) is after {high} ({cleaned[high]})."
                self.form.add_error(low, forms.ValidationError(message, code="empty_range"))
                self.form.add_error(high, forms.ValidationError(message, code="empty_range"))
        return not self.form.errors


class IsoDateField(forms.DateField):
    """A date written YYYY-MM-DD, and only so; an impossible one (2023-02-30)
    is called impossible, not badly formatted."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime.date):
            return value
        try:
            return date_from_iso(str(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class DateFilter(filters.DateFilter):
    field_class = IsoDateField


class AnyOfFilter(filters.MultipleChoiceFilter):
    """A repeatable parameter matching any of its values (`type=A&type=B`); the
    schema declares it an exploded array. The values reach a `method` as a
    list; without a method, the filter is `field_name__in` (no DISTINCT: the
    fields filtered this way are the model's own columns)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        return self.get_method(qs)(**{f"{self.field_name}__in": sorted(set(value))})


class IdsField(forms.MultipleChoiceField):
    """Record ids, one per repetition of the parameter."""

    def to_python(self, value) -> list[int]:
        ids = []
        for item in value or ():
            if not isinstance(item, str) or not ID_TEXT.fullmatch(item) or int(item) > MAX_ID:
                raise forms.ValidationError(
                    "%(value)r is not an id: ids are whole numbers, e.g. 3.",
                    code="invalid",
                    params={"value": item},
                )
            ids.append(int(item))
        return ids

    def validate(self, value):
        forms.Field.validate(self, value)  # any id may be asked for: no choices


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(AnyOfFilter):
    """Record ids: `actor=2&actor=3` is either of them."""

    field_class = IdsField


class CodesField(forms.MultipleChoiceField):
    """Codes of a fixed form (ISO 3166-1 alpha-3 country codes), in any case."""

    def __init__(self, *args, pattern: str, message: str, **kwargs):
        self.pattern, self.message = re.compile(pattern), message
        super().__init__(*args, **kwargs)

    def to_python(self, value) -> list[str]:
        codes = []
        for item in value or ():
            code = item.upper() if isinstance(item, str) else ""
            if not self.pattern.fullmatch(code):
                raise forms.ValidationError(
                    "%(value)r: %(message)s",
                    code="invalid",
                    params={"value": item, "message": self.message},
                )
            codes.append(code)
        return codes

    def validate(self, value):
        forms.Field.validate(self, value)


@extend_schema_field(OpenApiTypes.STR)
class CountryFilter(AnyOfFilter):
    """ISO 3166-1 alpha-3 codes (or the project's own, such as EUR), any case."""

    field_class = CodesField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("pattern", COUNTRY_CODE_RE.strip("^$"))
        kwargs.setdefault("message", "use a three-letter ISO 3166-1 alpha-3 code, e.g. ARM.")
        super().__init__(*args, **kwargs)


class FilterSchema(DjangoFilterExtension):
    """drf-spectacular's description of django-filter parameters, with two
    corrections: a filter whose type is declared (`extend_schema_field`, as
    IdFilter does) keeps its help text, and a repeatable filter over an array
    column (`context`) takes single values, not arrays."""

    target_class = "events.api.FilterBackend"
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        parameters = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        for parameter in parameters:
            if not parameter.get("description"):
                description = self._get_field_description(filter_field, None)
                if description:
                    parameter["description"] = description
            schema = parameter["schema"]
            if schema.get("type") == "array" and schema["items"].get("type") == "array":
                schema["items"] = schema["items"]["items"]
        return parameters


def search_query(text: str) -> SearchQuery:
    """Web-search syntax: words, "quoted phrases", OR, -excluded."""
    return SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)


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


class DateRangeFilterSet(FilterSet):
    """Records whose date interval overlaps [date_after, date_before]; an open
    end of an interval counts as unbounded."""

    date_after = DateFilter(
        method="filter_date_after", help_text="Records on or after this date (YYYY-MM-DD)."
    )
    date_before = DateFilter(
        method="filter_date_before",
        help_text="Records on or before this date (YYYY-MM-DD); not before date_after.",
    )
    ranges = (("date_after", "date_before"),)

    def filter_date_after(self, queryset, name, value):
        return queryset.filter(Q(date_end__isnull=True) | Q(date_end__gte=value))

    def filter_date_before(self, queryset, name, value):
        return queryset.filter(Q(date_start__isnull=True) | Q(date_start__lte=value))


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
    actor = IdFilter(
        method="filter_actor",
        help_text="Actor id taking part in any role (or in `role`, when given); "
        "repeat for any of several.",
    )
    initiator = IdFilter(
        method="filter_initiator", help_text="Initiator's actor id; repeat for several."
    )
    target = IdFilter(method="filter_target", help_text="Target's actor id; repeat for several.")
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
    place = IdFilter(field_name="place_id", help_text="Place id; repeat for several.")
    source = IdFilter(method="filter_source", help_text="Cites this source id; repeat for several.")
    q = SearchFilter(
        method="filter_q",
        help_text="Full-text search over titles, summaries and evidence quotes "
        f'(web-search syntax: words, "phrases", OR, -word); {SEARCH_BOUNDS}.',
    )

    class Meta:
        model = Event
        fields = []

    def _involving(self, queryset, actor_ids, roles=()):
        participants = EventParticipant.objects.filter(event=OuterRef("pk"), actor_id__in=actor_ids)
        if roles:
            participants = participants.filter(role__in=roles)
        return queryset.filter(Exists(participants))

    def filter_actor(self, queryset, name, value):
        return self._involving(queryset, value, self.form.cleaned_data.get("role"))

    def filter_initiator(self, queryset, name, value):
        return self._involving(queryset, value, [ParticipantRole.INITIATOR])

    def filter_target(self, queryset, name, value):
        return self._involving(queryset, value, [ParticipantRole.TARGET])

    def filter_role(self, queryset, name, value):
        if self.form.cleaned_data.get("actor"):
            return queryset  # applied together with `actor`
        return queryset.filter(
            Exists(EventParticipant.objects.filter(event=OuterRef("pk"), role__in=value))
        )

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
        cited = RawSQL(
            "EXISTS (SELECT 1 FROM events_evidence v WHERE v.event_id = events_event.id "
            "AND v.search_vector @@ websearch_to_tsquery(%s::regconfig, %s) OFFSET 0)",
            [SEARCH_CONFIG, value],
            output_field=BooleanField(),
        )
        return queryset.filter(text | Q(cited))


class EventTextSearchFilterSet(EventFilterSet):
    search_in = "text"


class EventEvidenceSearchFilterSet(EventFilterSet):
    search_in = "evidence"


class StatementFilterSet(DateRangeFilterSet):
    speaker = IdFilter(field_name="speaker_id", help_text="Speaker's actor id; repeat for several.")
    kind = AnyOfFilter(
        choices=StatementKind.choices, help_text="Speech-act kind; repeat for several."
    )
    review_status = AnyOfFilter(
        choices=ReviewStatus.choices, help_text="Review status; repeat for several."
    )
    target = IdFilter(
        method="filter_target", help_text="Addressed to this actor id; repeat for several."
    )
    about_actor = IdFilter(
        method="filter_about_actor", help_text="About this actor id; repeat for several."
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


class SourceFilterSet(FilterSet):
    language = filters.CharFilter(help_text="BCP 47 language tag, e.g. en.")
    published_after = DateFilter(
        field_name="published_on",
        lookup_expr="gte",
        help_text="Published on or after (YYYY-MM-DD).",
    )
    published_before = DateFilter(
        field_name="published_on",
        lookup_expr="lte",
        help_text="Published on or before (YYYY-MM-DD); not before published_after.",
    )
    sha256 = filters.CharFilter(help_text="Hex sha256 of the text: is this document stored?")
    ranges = (("published_after", "published_before"),)

    class Meta:
        model = Source
        fields = []


class PlaceFilterSet(FilterSet):
    kind = AnyOfFilter(choices=PlaceKind.choices, help_text="Place kind; repeat for several.")
    country = CountryFilter(help_text="ISO 3166-1 alpha-3 code; repeat for several.")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Name contains.")

    class Meta:
        model = Place
        fields = []
