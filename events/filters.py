"""Query filters of the event, statement, source and place lists."""

import copy

import django_filters as filters
from django import forms
from django.contrib.postgres.search import SearchQuery
from django.db.models import BooleanField, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from events.models import (
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


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """A record id: a whole number (NumberFilter alone would take decimals)."""

    field_class = forms.IntegerField


def search_query(text: str) -> SearchQuery:
    """Web-search syntax: words, "quoted phrases", OR, -excluded."""
    return SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)


def evidence_matching(text: str) -> QuerySet:
    """Evidence whose quote matches `text`, on the quote's full-text index."""
    return Evidence.objects.filter(search_vector=search_query(text))


class DateRangeFilterSet(FilterSet):
    """Records whose date interval overlaps [date_after, date_before]; an open
    end of an interval counts as unbounded."""

    date_after = filters.DateFilter(
        method="filter_date_after", help_text="Records on or after this date (YYYY-MM-DD)."
    )
    date_before = filters.DateFilter(
        method="filter_date_before", help_text="Records on or before this date (YYYY-MM-DD)."
    )

    def filter_date_after(self, queryset, name, value):
        return queryset.filter(Q(date_end__isnull=True) | Q(date_end__gte=value))

    def filter_date_before(self, queryset, name, value):
        return queryset.filter(Q(date_start__isnull=True) | Q(date_start__lte=value))


class EventFilterSet(DateRangeFilterSet):
    type = filters.MultipleChoiceFilter(
        choices=EventType.choices, help_text="Event type; repeat for several (type=A&type=B)."
    )
    status = filters.MultipleChoiceFilter(
        choices=EventStatus.choices, help_text="Status; repeat for several."
    )
    review_status = filters.ChoiceFilter(choices=ReviewStatus.choices)
    context = filters.ChoiceFilter(
        choices=EventContext.choices, method="filter_context", help_text="Has this context."
    )
    actor = IdFilter(
        method="filter_actor",
        help_text="Actor id taking part in any role (or in `role`, when given).",
    )
    initiator = IdFilter(method="filter_initiator", help_text="Initiator's actor id.")
    target = IdFilter(method="filter_target", help_text="Target's actor id.")
    role = filters.ChoiceFilter(
        choices=ParticipantRole.choices,
        method="filter_role",
        help_text="With `actor`: the role that actor plays. Alone: someone plays this role.",
    )
    country = filters.CharFilter(
        field_name="place__country", help_text="ISO 3166-1 alpha-3 code of the event's place."
    )
    place = IdFilter(field_name="place_id", help_text="Place id.")
    source = IdFilter(method="filter_source", help_text="Cites this source id.")
    q = filters.CharFilter(
        method="filter_q",
        help_text="Full-text search over titles, summaries and evidence quotes "
        '(web-search syntax: words, "phrases", OR, -word).',
    )

    class Meta:
        model = Event
        fields = []

    def _involving(self, queryset, actor_id, role=None):
        participants = EventParticipant.objects.filter(event=OuterRef("pk"), actor_id=actor_id)
        if role:
            participants = participants.filter(role=role)
        return queryset.filter(Exists(participants))

    def filter_actor(self, queryset, name, value):
        return self._involving(queryset, value, self.form.cleaned_data.get("role"))

    def filter_initiator(self, queryset, name, value):
        return self._involving(queryset, value, ParticipantRole.INITIATOR)

    def filter_target(self, queryset, name, value):
        return self._involving(queryset, value, ParticipantRole.TARGET)

    def filter_role(self, queryset, name, value):
        if self.form.cleaned_data.get("actor") is not None:
            return queryset  # applied together with `actor`
        return queryset.filter(
            Exists(EventParticipant.objects.filter(event=OuterRef("pk"), role=value))
        )

    def filter_context(self, queryset, name, value):
        return queryset.filter(context__contains=[value])

    def filter_source(self, queryset, name, value):
        return queryset.filter(
            Exists(Evidence.objects.filter(event=OuterRef("pk"), source_id=value))
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
    speaker = IdFilter(field_name="speaker_id", help_text="Speaker's actor id.")
    kind = filters.MultipleChoiceFilter(
        choices=StatementKind.choices, help_text="Speech-act kind; repeat for several."
    )
    review_status = filters.ChoiceFilter(choices=ReviewStatus.choices)
    target = IdFilter(method="filter_target", help_text="Addressed to this actor id.")
    about_actor = IdFilter(method="filter_about_actor", help_text="About this actor id.")
    about_event = IdFilter(field_name="about_events", help_text="About this event id.")
    source = IdFilter(method="filter_source", help_text="Cites this source id.")
    q = filters.CharFilter(
        method="filter_q",
        help_text="Full-text search over content, verbatim quotes and evidence quotes.",
    )

    class Meta:
        model = Statement
        fields = []

    def _linked(self, queryset, actor_id, role):
        links = StatementActor.objects.filter(
            statement=OuterRef("pk"), actor_id=actor_id, role=role
        )
        return queryset.filter(Exists(links))

    def filter_target(self, queryset, name, value):
        return self._linked(queryset, value, StatementActorRole.TARGET)

    def filter_about_actor(self, queryset, name, value):
        return self._linked(queryset, value, StatementActorRole.ABOUT)

    def filter_source(self, queryset, name, value):
        return queryset.filter(
            Exists(Evidence.objects.filter(statement=OuterRef("pk"), source_id=value))
        )

    def filter_q(self, queryset, name, value):
        matching = evidence_matching(value).filter(statement__isnull=False).values("statement_id")
        return queryset.filter(Q(search_vector=search_query(value)) | Q(pk__in=matching))


class SourceFilterSet(FilterSet):
    language = filters.CharFilter(help_text="BCP 47 language tag, e.g. en.")
    published_after = filters.DateFilter(field_name="published_on", lookup_expr="gte")
    published_before = filters.DateFilter(field_name="published_on", lookup_expr="lte")
    sha256 = filters.CharFilter(help_text="Hex sha256 of the text: is this document stored?")

    class Meta:
        model = Source
        fields = []


class PlaceFilterSet(FilterSet):
    kind = filters.ChoiceFilter(choices=PlaceKind.choices)
    country = filters.CharFilter(help_text="ISO 3166-1 alpha-3 code.")
    q = filters.CharFilter(field_name="name", lookup_expr="icontains", help_text="Name contains.")

    class Meta:
        model = Place
        fields = []
