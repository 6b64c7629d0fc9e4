from django.contrib import admin

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation
from actors.serializers import ActorSerializer, AffiliationSerializer
from events.admin import EvidenceInline, HistoryAdminMixin


class ActorAliasInline(admin.TabularInline):
    model = ActorAlias
    extra = 0


class ActorIdentifierInline(admin.TabularInline):
    model = ActorIdentifier
    extra = 0


@admin.register(Actor)
class ActorAdmin(HistoryAdminMixin, admin.ModelAdmin):
    history_serializer = ActorSerializer
    list_display = ["name", "kind", "country", "sector", "id"]
    list_filter = ["kind", "country", "sector"]
    search_fields = ["name", "slug", "aliases__name", "identifiers__value"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ActorAliasInline, ActorIdentifierInline]


@admin.register(Affiliation)
class AffiliationAdmin(HistoryAdminMixin, admin.ModelAdmin):
    history_serializer = AffiliationSerializer
    list_display = ["member", "role", "organization", "start_date", "end_date"]
    list_select_related = ["member", "organization"]
    search_fields = ["member__name", "organization__name", "role"]
    autocomplete_fields = ["member", "organization"]
    inlines = [EvidenceInline]
