"""The curators' admin of places, events and statements (ledger.admin gives
each save a reason, refuses conflicting edits and shows the history)."""

import itertools

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from events import admin_import
from events.mentions import mentions
from events.models import Event, EventParticipant, Place, Statement, StatementActor, StatementEvent
from events.serializers import EventSerializer, PlaceSerializer, StatementSerializer
from events.services import place_merge, place_merge_preview, place_unmerge
from ledger.admin import LedgerModelAdmin, MergeableAdmin
from sources.admin import EvidenceInline, SourceAdmin
from sources.models import Source


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
class PlaceAdmin(MergeableAdmin):
    """Places; duplicates are merged with the list's "Merge into…" action
    (ledger.admin.MergeableAdmin, through events.services)."""

    history_serializer = PlaceSerializer
    list_display = ["name", "kind", "country", "revision", "id"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["revision"]

    def perform_service_merge(self, record: Place, into: Place) -> dict:
        return place_merge(place=record, into=into)

    def perform_service_unmerge(self, record: Place) -> dict:
        return place_unmerge(place=record)

    def merge_preview(self, record: Place, into: Place) -> dict:
        return place_merge_preview(place=record, into=into)


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

    def get_urls(self):
        # The document import page (events.admin_import), linked from the sources' list.
        return admin_import.urls(self.admin_site) + super().get_urls()

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


# The sources' admin again, with the text shown marked up: sources/admin.py
# knows no actors or places, so it is extended here.
admin.site.unregister(Source)


@admin.register(Source)
class SourceMentionsAdmin(SourceAdmin):
    """The source's page also shows its text with what it mentions
    (events.mentions): names of stored actors and places, each linking to its
    record, dates and quoted passages."""

    readonly_fields = [*SourceAdmin.readonly_fields, "text_mentions"]

    class Media:
        css = {"all": ["events/mentions.css"]}

    @admin.display(description="mentions")
    def text_mentions(self, source: Source) -> str:
        if source.pk is None:
            return "Shown once the source is saved."
        return highlighted(source.text, mentions(source.text), self.admin_site.name)


def highlighted(text: str, found: dict, site: str = "admin") -> SafeString:
    """`text` as HTML, every piece escaped, with the names, dates and quotes of
    `found` (events.mentions) marked, each kind in its own style. Names do not
    overlap, nor do dates, nor quotes (each list in the order of the text), but
    a name or a date may sit in a quote: the text is cut wherever a span starts
    or ends, and each piece is wrapped in the spans that cover it."""
    kinds = ("quotes", "dates", "names")
    spans = [span for kind in kinds for span in found[kind]]
    cuts = sorted({0, len(text), *(s["start"] for s in spans), *(s["end"] for s in spans)})
    upcoming = {kind: 0 for kind in kinds}  # per kind, the first span not yet passed
    pieces = [
        format_html(
            '<p class="mention-legend"><span class="mention-name">name</span> '
            '<span class="mention-date">date</span> <span class="mention-quote">quote</span>'
            " ({} names, {} dates, {} quotes)</p>",
            len(found["names"]),
            len(found["dates"]),
            len(found["quotes"]),
        )
    ]
    for start, end in itertools.pairwise(cuts):
        piece = format_html("{}", text[start:end])
        covering = {}
        for kind in kinds:
            index, listed = upcoming[kind], found[kind]
            while index < len(listed) and listed[index]["end"] <= start:
                index += 1
            upcoming[kind] = index
            if index < len(listed) and listed[index]["start"] <= start:
                covering[kind] = listed[index]
        if name := covering.get("names"):
            piece = _name(piece, name, site, last=end == name["end"])
        if date := covering.get("dates"):
            piece = format_html(
                '<span class="mention-date" title="{} to {} ({})">{}</span>',
                date["date_start"],
                date["date_end"],
                date["date_precision"],
                piece,
            )
        if covering.get("quotes"):
            piece = format_html('<span class="mention-quote">{}</span>', piece)
        pieces.append(piece)
    body = mark_safe("".join(pieces[1:]))  # each piece escaped above
    return format_html('{}<div class="mention-text">{}</div>', pieces[0], body)


def _name(piece: SafeString, name: dict, site: str, *, last: bool) -> SafeString:
    """A piece of a name: a link to the record it names, or with several
    records, the words marked and the links after the name's last piece."""
    views = {"actor": "actors_actor_change", "place": "events_place_change"}
    links = [
        (reverse(f"{site}:{views[m['kind']]}", args=[m["id"]]), f"{m['kind']} {m['slug']}")
        for m in name["matches"]
    ]
    if len(links) == 1:
        ((url, label),) = links
        return format_html('<a class="mention-name" href="{}" title="{}">{}</a>', url, label, piece)
    marked = format_html('<span class="mention-name">{}</span>', piece)
    if not last:
        return marked
    records = mark_safe(", ".join(format_html('<a href="{}">{}</a>', *link) for link in links))
    return format_html('{}<sup class="mention-records">[{}]</sup>', marked, records)
