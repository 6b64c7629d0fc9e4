from django.contrib import admin

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation
from actors.serializers import ActorSerializer, AffiliationSerializer
from actors.services import actor_merge, actor_merge_preview, actor_unmerge
from ledger.admin import LedgerModelAdmin, MergeableAdmin
from sources.admin import EvidenceInline


class ActorAliasInline(admin.TabularInline):
    model = ActorAlias
    extra = 0


class ActorIdentifierInline(admin.TabularInline):
    model = ActorIdentifier
    extra = 0


class AffiliationInline(admin.TabularInline):
    """The actor's affiliations, listed; each is edited on its own page, where
    its evidence is given."""

    model = Affiliation
    fk_name = "member"
    fields = ["role", "organization", "start_display", "end_display"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False
    extra = 0
    max_num = 0


@admin.register(Actor)
class ActorAdmin(MergeableAdmin):
    """Actors; duplicates are merged with the list's "Merge into…" action
    (ledger.admin.MergeableAdmin, through actors.services)."""

    history_serializer = ActorSerializer
    list_display = ["name", "kind", "country", "sector", "revision", "id"]
    list_filter = ["kind", "country", "sector"]
    search_fields = ["name", "slug", "aliases__name", "identifiers__value"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["revision"]
    inlines = [ActorAliasInline, ActorIdentifierInline, AffiliationInline]

    def perform_service_merge(self, record: Actor, into: Actor) -> dict:
        return actor_merge(actor=record, into=into)

    def perform_service_unmerge(self, record: Actor) -> dict:
        return actor_unmerge(actor=record)

    def merge_preview(self, record: Actor, into: Actor) -> dict:
        return actor_merge_preview(actor=record, into=into)


@admin.register(Affiliation)
class AffiliationAdmin(LedgerModelAdmin):
    history_serializer = AffiliationSerializer
    list_display = [
        "member",
        "role",
        "organization",
        "start_display",
        "end_display",
        "revision",
        "id",
    ]
    list_filter = ["role", "organization"]
    list_select_related = ["member", "organization"]
    search_fields = ["member__name", "organization__name", "role"]
    autocomplete_fields = ["member", "organization"]
    readonly_fields = ["revision"]
    inlines = [EvidenceInline]
