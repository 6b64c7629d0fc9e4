"""Query filters of the actor and affiliation lists."""

import django_filters as filters
from django.core.validators import RegexValidator
from django.db.models import Exists, OuterRef, Q

from actors.models import Actor, ActorAlias, ActorIdentifier, ActorKind, Affiliation, Sector
from events.filters import FilterSet, IdFilter


class ActorFilterSet(FilterSet):
    kind = filters.MultipleChoiceFilter(
        choices=ActorKind.choices, help_text="Actor kind; repeat for several."
    )
    country = filters.CharFilter(help_text="ISO 3166-1 alpha-3 code (or IGO, EUR).")
    sector = filters.ChoiceFilter(choices=Sector.choices)
    q = filters.CharFilter(method="filter_q", help_text="Name or alias contains (any case).")
    identifier = filters.CharFilter(
        method="filter_identifier",
        validators=[
            RegexValidator(r"^[a-z0-9][a-z0-9_-]*:.+$", "Use scheme:value, e.g. wikidata:Q399.")
        ],
        help_text="External identifier as scheme:value, e.g. wikidata:Q399.",
    )

    class Meta:
        model = Actor
        fields = []

    def filter_q(self, queryset, name, value):
        aliases = ActorAlias.objects.filter(actor=OuterRef("pk"), name__icontains=value)
        return queryset.filter(Q(name__icontains=value) | Exists(aliases))

    def filter_identifier(self, queryset, name, value):
        scheme, _, identifier = value.partition(":")
        return queryset.filter(
            Exists(
                ActorIdentifier.objects.filter(
                    actor=OuterRef("pk"), scheme=scheme, value=identifier
                )
            )
        )


class AffiliationFilterSet(FilterSet):
    member = IdFilter(field_name="member_id", help_text="Member's actor id.")
    organization = IdFilter(field_name="organization_id", help_text="Organisation's actor id.")
    actor = IdFilter(method="filter_actor", help_text="Member or organisation id.")
    role = filters.CharFilter(lookup_expr="icontains", help_text="Role contains (any case).")

    class Meta:
        model = Affiliation
        fields = []

    def filter_actor(self, queryset, name, value):
        return queryset.filter(Q(member_id=value) | Q(organization_id=value))
