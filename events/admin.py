"""The curators' admin: every resource editable, evidence given by pasting the
quote, each save with an optional reason, conflicting edits refused, and each
record's history one click away."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from events.models import (
    Event,
    EventParticipant,
    Evidence,
    Place,
    Source,
    Statement,
    StatementActor,
    StatementEvent,
)
from events.serializers import (
    EventSerializer,
    PlaceSerializer,
    SourceSerializer,
    StatementSerializer,
)
from events.services import locate_quote
from ledger.admin import LedgerAdminForm, LedgerModelAdmin

CONTEXT_CHARACTERS = 80


class EvidenceForm(forms.ModelForm):
    """Evidence by quotation: pick the source, paste the exact words; the
    offsets are computed. A quote found twice needs the occurrence."""

    occurrence = forms.IntegerField(
        min_value=1,
        required=False,
        help_text="Only when the quote occurs more than once: 1 for the first.",
    )

    class Meta:
        model = Evidence
        fields = ["source", "quote"]
        widgets = {"quote": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def clean(self):
        cleaned = super().clean()
        source, quote = cleaned.get("source"), cleaned.get("quote")
        if source is None or not quote:
            return cleaned
        unchanged = (
            self.instance.pk
            and self.instance.source_id == source.pk
            and self.instance.quote == quote
            and not cleaned.get("occurrence")
        )
        if not unchanged:
            try:
                start, end = locate_quote(
                    text=source.text, quote=quote, occurrence=cleaned.get("occurrence")
                )
            except ValidationError as exc:
                raise ValidationError({"quote": exc.messages}) from None
            self.instance.start, self.instance.end = start, end
        return cleaned


class EvidenceInline(admin.TabularInline):
    """Evidence spans of an event, statement or affiliation; at least one."""

    model = Evidence
    form = EvidenceForm
    fields = ["source", "quote", "occurrence", "in_context"]
    readonly_fields = ["in_context"]
    autocomplete_fields = ["source"]
    extra = 0
    min_num = 1

    def get_formset(self, request, obj=None, **kwargs):
        # The admin passes min_num but not validate_min to the formset factory.
        return super().get_formset(request, obj, validate_min=True, **kwargs)

    @admin.display(description="in its source")
    def in_context(self, evidence: Evidence) -> str:
        if not evidence.pk:
            return "—"
        text = evidence.source.text
        before = text[max(0, evidence.start - CONTEXT_CHARACTERS) : evidence.start]
        after = text[evidence.end : evidence.end + CONTEXT_CHARACTERS]
        return format_html(
            '<span class="evidence-context" style="display: inline-block; min-width: 24em">'
            "…{}<mark>{}</mark>{}… [{}:{}]</span>",
            before,
            evidence.quote,
            after,
            evidence.start,
            evidence.end,
        )


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


class SourceAdminForm(LedgerAdminForm):
    """The text of a source is its evidence's ground: it may not change under
    evidence, and the same text is stored once."""

    url = forms.URLField(required=False, max_length=2000, assume_scheme="https")

    def clean_text(self):
        text = self.cleaned_data["text"]
        if self.instance.pk and text != self.instance.text and self.instance.evidence.exists():
            raise ValidationError(
                "Evidence spans point into this text, so it cannot change. Store the new "
                "version as a new source."
            )
        twin = Source.objects.filter(sha256=Source.digest(text)).exclude(pk=self.instance.pk)
        if twin.exists():
            raise ValidationError(f"This text is already stored as source {twin.get().pk}.")
        return text


@admin.register(Source)
class SourceAdmin(LedgerModelAdmin):
    form = SourceAdminForm
    history_serializer = SourceSerializer
    list_display = ["__str__", "publisher", "published_on", "language", "revision", "id"]
    list_filter = ["language", "published_on"]
    search_fields = ["title", "publisher", "url", "text"]
    readonly_fields = ["sha256", "revision", "created_at", "updated_at"]


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
