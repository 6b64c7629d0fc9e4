"""Query filters of the actor and affiliation lists."""

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q

from actors.models import (
    IDENTIFIER_SCHEMES,
    Actor,
    ActorAlias,
    ActorKind,
    Affiliation,
    Sector,
    normalized_identifier,
)
from ledger.api.filters import AnyOfFilter, CountryFilter, FilterSet, IdOrSlugFilter


class IdentifierField(forms.CharField):
    """`scheme:value`, checked and normalised as the scheme says (so that
    wikidata:q399 finds Q399)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        scheme, colon, identifier = value.partition(":")
        if not colon or not scheme or not identifier:
            raise ValidationError("Use scheme:value, e.g. wikidata:Q399.", code="invalid")
        try:
            return normalized_identifier(scheme, identifier)
        except ValidationError as exc:
            raise ValidationError(exc.messages, code="invalid") from None


class IdentifierFilter(filters.CharFilter):
    field_class = IdentifierField


class ActorFilterSet(FilterSet):
    kind = AnyOfFilter(choices=ActorKind.choices, help_text="Actor kind; repeat for several.")
    country = CountryFilter(
        help_text="ISO 3166-1 alpha-3 code (or IGO, EUR), any case; repeat for several."
    )
    sector = AnyOfFilter(choices=Sector.choices, help_text="Sector; repeat for several.")
    slug = filters.CharFilter(help_text="The actor's slug, exactly (e.g. armenia).")
    q = filters.CharFilter(method="filter_q", help_text="Name or alias contains (any case).")
    identifier = IdentifierFilter(
        method="filter_identifier",
        help_text="External identifier as scheme:value, e.g. wikidata:Q399 (any case; "
        f"schemes: {', '.join(IDENTIFIER_SCHEMES)}).",
    )

    class Meta:
        model = Actor
        fields = []

    def filter_q(self, queryset, name, value):
        aliases = ActorAlias.objects.filter(actor=OuterRef("pk"), name__icontains=value)
        return queryset.filter(Q(name__icontains=value) | Exists(aliases))

    def filter_identifier(self, queryset, name, value):
        scheme, identifier = value  # in canonical case (IdentifierField)
        return queryset.with_identifier(scheme, identifier)


class AffiliationFilterSet(FilterSet):
    member = IdOrSlugFilter(
        model=Actor,
        field_name="member_id",
        help_text="Member's actor id or slug; repeat for several.",
    )
    organization = IdOrSlugFilter(
        model=Actor,
        field_name="organization_id",
        help_text="Organisation's actor id or slug; repeat for several.",
    )
    actor = IdOrSlugFilter(
        model=Actor,
        method="filter_actor",
        help_text="Member's or organisation's actor id or slug; repeat for several.",
    )
    role = filters.CharFilter(lookup_expr="icontains", help_text="Role contains (any case).")

    class Meta:
        model = Affiliation
        fields = []

    def filter_actor(self, queryset, name, value):
        return queryset.filter(Q(member_id__in=value) | Q(organization_id__in=value))
