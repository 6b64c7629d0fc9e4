"""The curators' admin of places, events and statements (ledger.admin gives
each save a reason, refuses conflicting edits and shows the history)."""

from django.contrib import admin

from events.models import Event, EventParticipant, Place, Statement, StatementActor, StatementEvent
from events.serializers import EventSerializer, PlaceSerializer, StatementSerializer
from ledger.admin import LedgerModelAdmin
from sources.admin import EvidenceInline


class EventParticipantInline(admin.TabularInline):
    model = EventParticipant
    autocomplete_fields = ["actor"]
    extra = 0


class StatementActorInline(admin.TabularInline):
    """Actors the statement is addressed to (target) or speaks about (about)."""

    model = StatementActor
    autocomplete_fields = ["actor"]
    extra = 0
    verbose_name = "actor addressed or discussed"
    verbose_name_plural = "actors addressed or discussed"


class StatementEventInline(admin.TabularInline):
    model = StatementEvent
    autocomplete_fields = ["event"]
    extra = 0
    verbose_name = "event it is about"
    verbose_name_plural = "events it is about"


@admin.register(Place)
class PlaceAdmin(LedgerModelAdmin):
    history_serializer = PlaceSerializer
    list_display = ["name", "kind", "country", "revision", "id"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["revision"]


@admin.register(Event)
class EventAdmin(LedgerModelAdmin):
    history_serializer = EventSerializer
    list_display = [
        "title",
        "type",
        "status",
        "date_display",
        "place",
        "review_status",
        "revision",
        "id",
    ]
    list_filter = ["type", "status", "review_status", "date_precision", "place__country"]
    list_select_related = ["place"]
    search_fields = ["title", "summary", "evidence__quote", "participants__actor__name"]
    autocomplete_fields = ["place"]
    date_hierarchy = "date_sort"
    readonly_fields = ["revision", "vocabulary_version"]
    inlines = [EventParticipantInline, EvidenceInline]

    @admin.display(description="date", ordering="date_sort")
    def date_display(self, event: Event) -> str:
        return event.date_display


@admin.register(Statement)
class StatementAdmin(LedgerModelAdmin):
    history_serializer = StatementSerializer
    list_display = [
        "speaker",
        "kind",
        "short_content",
        "date_display",
        "review_status",
        "revision",
        "id",
    ]
    list_filter = ["kind", "stance", "review_status", "date_precision"]
    list_select_related = ["speaker"]
    search_fields = ["content", "quote", "speaker__name", "evidence__quote"]
    autocomplete_fields = ["speaker"]
    date_hierarchy = "date_sort"
    readonly_fields = ["revision"]
    inlines = [StatementActorInline, StatementEventInline, EvidenceInline]

    @admin.display(description="content")
    def short_content(self, statement: Statement) -> str:
        return statement.content[:80]

    @admin.display(description="date", ordering="date_sort")
    def date_display(self, statement: Statement) -> str:
        return statement.date_display
