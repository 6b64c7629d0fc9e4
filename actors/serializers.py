"""JSON representations of actors and affiliations."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from actors.models import (
    IDENTIFIER_SCHEMES,
    Actor,
    ActorAlias,
    ActorIdentifier,
    Affiliation,
    Sector,
    normalized_identifier,
)
from ledger.api.serializers import SLUG_HELP, StrictCharField, StrictInputMixin, absolute_url
from sources.serializers import EvidenceInputSerializer, EvidenceSerializer


class ActorRefSerializer(serializers.ModelSerializer):
    """An actor as it appears inside another record."""

    url = serializers.HyperlinkedIdentityField(view_name="actor-detail")

    class Meta:
        model = Actor
        fields = ["id", "url", "name", "kind"]
        read_only_fields = fields


class IdentifierSerializer(StrictInputMixin, serializers.ModelSerializer):
    """An identifier in another system, e.g. scheme `wikidata`, value `Q399`."""

    class Meta:
        model = ActorIdentifier
        fields = ["scheme", "value"]
        # Uniqueness is checked against the whole actor by the service.
        validators = []
        extra_kwargs = {
            "scheme": {
                "validators": [],
                "help_text": f"One of: {', '.join(IDENTIFIER_SCHEMES)}.",
            },
            "value": {"validators": [], "help_text": "In the scheme's form, e.g. Q399."},
        }

    def validate(self, attrs):
        """The scheme must be known and the value of its form; both are kept
        in canonical case."""
        try:
            attrs["scheme"], attrs["value"] = normalized_identifier(attrs["scheme"], attrs["value"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A country",
            response_only=True,
            value={
                "id": 1,
                "url": "https://ledger.example.org/api/v1/actors/1/",
                "slug": "armenia",
                "name": "Armenia",
                "kind": "country",
                "country": "ARM",
                "sector": "",
                "description": "Republic of Armenia.",
                "aliases": [],
                "identifiers": [
                    {"scheme": "iso3166", "value": "ARM"},
                    {"scheme": "wikidata", "value": "Q399"},
                ],
                "events_url": "https://ledger.example.org/api/v1/events/?actor=1",
                "statements_url": "https://ledger.example.org/api/v1/statements/?speaker=1",
                "affiliations_url": "https://ledger.example.org/api/v1/affiliations/?actor=1",
                "created_at": "2023-11-10T09:00:00Z",
                "updated_at": "2023-11-10T09:00:00Z",
            },
        )
    ]
)
class ActorSerializer(serializers.ModelSerializer):
    """An actor with its aliases, external identifiers and links to its records."""

    url = serializers.HyperlinkedIdentityField(view_name="actor-detail")
    # Declared so the schema says it may be blank (read-only fields lose allow_blank).
    sector = serializers.ChoiceField(choices=Sector.choices, allow_blank=True, read_only=True)
    aliases = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    identifiers = IdentifierSerializer(many=True, read_only=True)
    events_url = serializers.SerializerMethodField()
    statements_url = serializers.SerializerMethodField()
    affiliations_url = serializers.SerializerMethodField()

    @staticmethod
    def eager(queryset):
        # 1 query for the actors, 1 for aliases, 1 for identifiers.
        return queryset.prefetch_related(
            Prefetch("aliases", ActorAlias.objects.order_by("name")),
            Prefetch("identifiers", ActorIdentifier.objects.order_by("scheme")),
        )

    class Meta:
        model = Actor
        fields = [
            "id",
            "url",
            "revision",
            "slug",
            "name",
            "kind",
            "country",
            "sector",
            "description",
            "aliases",
            "identifiers",
            "events_url",
            "statements_url",
            "affiliations_url",
            "merged_into",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _link(self, view_name: str, query: str, actor: Actor) -> str:
        return absolute_url(self.context.get("request"), f"{reverse(view_name)}?{query}={actor.pk}")

    @extend_schema_field(OpenApiTypes.URI)
    def get_events_url(self, actor: Actor) -> str:
        """Events in which the actor takes part, in any role."""
        return self._link("event-list", "actor", actor)

    @extend_schema_field(OpenApiTypes.URI)
    def get_statements_url(self, actor: Actor) -> str:
        """Statements the actor made."""
        return self._link("statement-list", "speaker", actor)

    @extend_schema_field(OpenApiTypes.URI)
    def get_affiliations_url(self, actor: Actor) -> str:
        return self._link("affiliation-list", "actor", actor)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A country",
            value={
                "slug": "armenia",
                "name": "Armenia",
                "kind": "country",
                "country": "ARM",
                "sector": "",
                "description": "Republic of Armenia.",
                "aliases": ["Republic of Armenia"],
                "identifiers": [{"scheme": "wikidata", "value": "Q399"}],
            },
            request_only=True,
        )
    ]
)
class ActorWriteSerializer(StrictInputMixin, serializers.ModelSerializer):
    """Aliases and identifiers, when given, replace the current ones."""

    aliases = serializers.ListField(
        child=StrictCharField(max_length=300), required=False, max_length=100
    )
    identifiers = IdentifierSerializer(many=True, required=False)

    class Meta:
        model = Actor
        fields = [
            "slug",
            "name",
            "kind",
            "country",
            "sector",
            "description",
            "aliases",
            "identifiers",
        ]
        extra_kwargs = {"slug": {"required": False, "help_text": SLUG_HELP}}
        kept_when_omitted = ("slug",)  # by a full update (RevisionedViewSet)

    def validate_aliases(self, aliases):
        if len(aliases) != len(set(aliases)):
            raise serializers.ValidationError("An alias is listed twice.")
        return aliases

    def validate_identifiers(self, identifiers):
        schemes = [item["scheme"] for item in identifiers]
        if len(schemes) != len(set(schemes)):
            raise serializers.ValidationError("One value per scheme.")
        taken = ActorIdentifier.objects.filter(
            scheme__in=schemes, value__in=[item["value"] for item in identifiers]
        ).exclude(actor=self.instance)
        for item in identifiers:
            if any(t.scheme == item["scheme"] and t.value == item["value"] for t in taken):
                raise serializers.ValidationError(
                    f"{item['scheme']}:{item['value']} already identifies another actor."
                )
        return identifiers


class AffiliationSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="affiliation-detail")
    member = ActorRefSerializer(read_only=True)
    organization = ActorRefSerializer(read_only=True)
    evidence = EvidenceSerializer(many=True, read_only=True)

    @staticmethod
    def eager(queryset):
        # 1 query for the affiliations with both actors, 1 for evidence.
        return queryset.select_related("member", "organization").prefetch_related(
            "evidence",  # ordered by Evidence.Meta.ordering
        )

    class Meta:
        model = Affiliation
        fields = [
            "id",
            "url",
            "revision",
            "member",
            "organization",
            "role",
            "start_date",
            "start_precision",
            "end_date",
            "end_precision",
            "evidence",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A prime minister",
            value={
                "member": 8,
                "organization": 1,
                "role": "Prime Minister",
                "start_date": None,
                "start_precision": "unknown",
                "end_date": None,
                "end_precision": "unknown",
                "evidence": [{"source": 1, "quote": "Armenian Prime Minister Nikol Pashinyan"}],
            },
            request_only=True,
        )
    ]
)
class AffiliationWriteSerializer(StrictInputMixin, serializers.ModelSerializer):
    evidence = EvidenceInputSerializer(many=True, allow_empty=False)

    class Meta:
        model = Affiliation
        fields = [
            "member",
            "organization",
            "role",
            "start_date",
            "start_precision",
            "end_date",
            "end_precision",
            "evidence",
        ]
        # The (member, organization, role, start) uniqueness is the database's to check.
        validators = []

    def validate(self, attrs):
        instance = self.instance
        member = attrs.get("member", getattr(instance, "member", None))
        organization = attrs.get("organization", getattr(instance, "organization", None))
        if member is not None and member == organization:
            raise serializers.ValidationError({"organization": "Must differ from the member."})
        start = attrs.get("start_date", getattr(instance, "start_date", None))
        end = attrs.get("end_date", getattr(instance, "end_date", None))
        if start and end and start > end:
            raise serializers.ValidationError({"start_date": "Must not be after end_date."})
        return attrs
