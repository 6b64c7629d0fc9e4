"""The curators' admin of sources, and the evidence inline of every record
that cites them: evidence given by pasting the quote."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from ledger.admin import LedgerAdminForm, LedgerModelAdmin
from sources.models import Evidence, Source
from sources.serializers import SourceSerializer
from sources.services import locate_quote

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


class SourceAdminForm(LedgerAdminForm):
    """A source's form; `Source.clean()` refuses a text already stored, or a
    changed text under evidence."""

    url = forms.URLField(required=False, max_length=2000, assume_scheme="https")


@admin.register(Source)
class SourceAdmin(LedgerModelAdmin):
    form = SourceAdminForm
    history_serializer = SourceSerializer
    list_display = ["__str__", "publisher", "published_on", "language", "revision", "id"]
    list_filter = ["language", "published_on"]
    search_fields = ["title", "publisher", "url", "text"]
    readonly_fields = ["sha256", "revision", "created_at", "updated_at"]
