"""The curators' admin: every resource editable, evidence given by pasting the
quote, each save with an optional reason, conflicting edits refused, and each
record's history one click away."""

import pghistory
from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.utils.html import format_html

from events.history import has_history, with_representations
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

CONTEXT_CHARACTERS = 80


class LedgerAdminForm(forms.ModelForm):
    """The change form of a revisioned record. It remembers the revision the
    curator opened, and refuses the save if someone changed the record since:
    the other change is kept, nothing of this one is written."""

    change_reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason for this change",
        help_text="Optional; kept in the record's history.",
    )
    based_on_revision = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["based_on_revision"].initial = self.instance.revision

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        # The admin's save runs in one transaction: the lock holds until it commits.
        current = (
            type(self.instance)
            .objects.select_for_update()
            .filter(pk=self.instance.pk)
            .values_list("revision", flat=True)
            .first()
        )
        based_on = cleaned.get("based_on_revision")
        if current is not None and based_on is not None and current != based_on:
            raise ValidationError(
                f"Someone else changed this record after you opened it: it is now at "
                f"revision {current}, you started from revision {based_on}. Your changes "
                "were not saved. Open the record again to see the current version, then "
                "make your change there."
            )
        return cleaned


class LedgerModelAdmin(admin.ModelAdmin):
    """Admin of a revisioned resource: the reason given is recorded with the
    save, and the History page shows the record's revisions from its snapshots:
    who, when, through what, why, and what changed."""

    form = LedgerAdminForm
    history_serializer = None  # the API representation revisions are compared by

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get("change_reason")
        if reason:
            pghistory.context(reason=reason)
        super().save_model(request, obj, form, change)

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
