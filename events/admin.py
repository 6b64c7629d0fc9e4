from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from events.history import has_history, with_representations
from events.models import (
    Event,
    EventParticipant,
    Evidence,
    Place,
    Source,
    Statement,
    StatementActor,
)
from events.serializers import (
    EventSerializer,
    PlaceSerializer,
    SourceSerializer,
    StatementSerializer,
)


class HistoryAdminMixin:
    """The admin's History page shows the record's revisions from its
    snapshots: who, when, through what, why, and what changed."""

    history_serializer = None  # the API representation to compare revisions by

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is None and not (object_id.isdigit() and has_history(self.model, object_id)):
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied

        def render(instance):
            return self.history_serializer(instance, context={"request": request}).data

        entries = list(reversed(with_representations(self.model, object_id, render)))
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obj}" if obj else f"History of deleted #{object_id}",
            "opts": self.model._meta,
            "object": obj,
            "object_id": object_id,
            "entries": entries,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/ledger/history.html", context)


class EvidenceInline(admin.TabularInline):
    """Evidence spans of an event, statement or affiliation; at least one."""

    model = Evidence
    fields = ["source", "start", "end", "quote"]
    autocomplete_fields = ["source"]
    extra = 0
    min_num = 1

    def get_formset(self, request, obj=None, **kwargs):
        # The admin passes min_num but not validate_min to the formset factory.
        return super().get_formset(request, obj, validate_min=True, **kwargs)


class EventParticipantInline(admin.TabularInline):
    model = EventParticipant
    autocomplete_fields = ["actor"]
    extra = 0


class StatementActorInline(admin.TabularInline):
    """Actors the statement is addressed to or about."""

    model = StatementActor
    autocomplete_fields = ["actor"]
    extra = 0


@admin.register(Source)
class SourceAdmin(HistoryAdminMixin, admin.ModelAdmin):
    history_serializer = SourceSerializer
    list_display = ["__str__", "publisher", "published_on", "language", "id"]
    list_filter = ["language", "published_on"]
    search_fields = ["title", "publisher", "url", "text"]
    readonly_fields = ["sha256", "created_at", "updated_at"]


@admin.register(Place)
class PlaceAdmin(HistoryAdminMixin, admin.ModelAdmin):
    history_serializer = PlaceSerializer
    list_display = ["name", "kind", "country", "id"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Event)
class EventAdmin(HistoryAdminMixin, admin.ModelAdmin):
    history_serializer = EventSerializer
    list_display = ["title", "type", "status", "date_display", "place", "review_status", "id"]
    list_filter = ["type", "status", "review_status", "date_precision", "place__country"]
    list_select_related = ["place"]
    search_fields = ["title", "summary", "evidence__quote"]
    autocomplete_fields = ["place"]
    date_hierarchy = "date_end"
    inlines = [EventParticipantInline, EvidenceInline]

    @admin.display(description="date", ordering="date_start")
    def date_display(self, event: Event) -> str:
        return event.date_display


@admin.register(Statement)
class StatementAdmin(HistoryAdminMixin, admin.ModelAdmin):
    history_serializer = StatementSerializer
    list_display = ["speaker", "kind", "short_content", "date_display", "review_status", "id"]
    list_filter = ["kind", "stance", "review_status"]
    list_select_related = ["speaker"]
    search_fields = ["content", "quote", "speaker__name", "evidence__quote"]
    autocomplete_fields = ["speaker", "about_events"]
    inlines = [StatementActorInline, EvidenceInline]

    @admin.display(description="content")
    def short_content(self, statement: Statement) -> str:
        return statement.content[:80]

    @admin.display(description="date", ordering="date_start")
    def date_display(self, statement: Statement) -> str:
        return statement.date_display
