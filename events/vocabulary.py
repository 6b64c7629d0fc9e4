"""The codebook the data is coded with, for clients: GET /api/v1/vocabulary/.

Every list is read from the choices of the model field it codes (and the
identifier schemes from actors.models.IDENTIFIER_SCHEMES), so the endpoint
cannot drift from what the API accepts. In the events app: only it sees every
app's models.
"""

import functools
import hashlib
from collections.abc import Mapping
from typing import Any

from django.db import models
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from actors.models import IDENTIFIER_SCHEMES, Actor
from events.models import (
    EVENT_STATUS_DESCRIPTION,
    EVENT_TYPE_DESCRIPTION,
    EVENT_VOCABULARY,
    EVENT_VOCABULARY_VERSION,
    PARTICIPANT_ROLE_DESCRIPTION,
    QUAD_CLASS,
    Event,
    EventParticipant,
    Place,
    QuadClass,
    Statement,
    StatementActor,
)
from ledger.api.conditional import ENTITY_TAG
from ledger.api.filters import StrictQueryMixin

# Clients may keep the codebook this long without asking; it changes only with
# a release, and If-None-Match makes asking again cheap.
MAX_AGE = 3600


def field_choices(model, name: str) -> list[tuple[str, str]]:
    """The (value, label) choices of a model field, or of its items for an array."""
    field = model._meta.get_field(name)
    field = getattr(field, "base_field", field)  # ArrayField: its items' choices
    return list(field.choices)


# Each list: (key in the body, model, field, descriptions where the label does
# not say it all).
CHOICE_LISTS: tuple[tuple[str, type[models.Model], str, Mapping[Any, str]], ...] = (
    ("contexts", Event, "context", {}),
    ("statuses", Event, "status", EVENT_STATUS_DESCRIPTION),
    ("review_statuses", Event, "review_status", {}),
    ("participant_roles", EventParticipant, "role", PARTICIPANT_ROLE_DESCRIPTION),
    ("statement_kinds", Statement, "kind", {}),
    ("stances", Statement, "stance", {}),
    ("statement_actor_roles", StatementActor, "role", {}),
    ("actor_kinds", Actor, "kind", {}),
    ("sectors", Actor, "sector", {}),
    ("place_kinds", Place, "kind", {}),
    ("date_precisions", Event, "date_precision", {}),
)


def values(choices, descriptions: Mapping[Any, str]) -> list[dict]:
    return [
        {"value": value, "label": label, "description": descriptions.get(value, label)}
        for value, label in choices
    ]


def vocabulary() -> dict:
    """The codebook, as the endpoint answers it."""
    mode = Event._meta.get_field("mode")
    return {
        "vocabulary": EVENT_VOCABULARY,
        "version": EVENT_VOCABULARY_VERSION,
        "event_types": [
            {**item, "quad_class": QUAD_CLASS.get(item["value"])}
            for item in values(field_choices(Event, "type"), EVENT_TYPE_DESCRIPTION)
        ],
        "quad_classes": values(QuadClass.choices, {}),
        "mode": {
            "controlled": False,
            "max_length": mode.max_length,
            "description": f"{mode.help_text} A slug (letters, digits, - and _), free for "
            "every event type, or empty.",
        },
        **{key: values(field_choices(model, name), d) for key, model, name, d in CHOICE_LISTS},
        "identifier_schemes": [
            {
                "value": name,
                "label": scheme.label,
                "description": scheme.label,
                "pattern": scheme.pattern,
                "example": scheme.example,
            }
            for name, scheme in IDENTIFIER_SCHEMES.items()
        ],
    }


@functools.cache
def rendered() -> tuple[dict, str]:
    """The codebook and its ETag (a digest of its JSON). Built once per process:
    it changes only with the code."""
    data = VocabularySerializer(vocabulary()).data
    digest = hashlib.sha256(JSONRenderer().render(data)).hexdigest()[:32]
    return data, f'"{digest}"'


# Serializers (the schema, so generated clients get types) -------------------


class VocabularyValueSerializer(serializers.Serializer):
    value = serializers.CharField(help_text="The value as the data stores it.")
    label = serializers.CharField(help_text="A short name for people.")
    description = serializers.CharField(
        help_text="What the value means (its label, where that says it all)."
    )


class VocabularyEventTypeSerializer(VocabularyValueSerializer):
    quad_class = serializers.ChoiceField(
        choices=QuadClass.choices,
        allow_null=True,
        help_text="PLOVER quad class of the type (null for DISSOLVE).",
    )


class VocabularyModeSerializer(serializers.Serializer):
    controlled = serializers.BooleanField(
        help_text="Whether modes come from a list; false: any slug, for every type."
    )
    max_length = serializers.IntegerField()
    description = serializers.CharField()


class VocabularyIdentifierSchemeSerializer(VocabularyValueSerializer):
    pattern = serializers.CharField(
        help_text="A regular expression a value (in its canonical case) matches whole."
    )
    example = serializers.CharField()


class VocabularySerializer(serializers.Serializer):
    vocabulary = serializers.CharField(help_text="The codebook events are coded in.")
    version = serializers.CharField(
        help_text="The version of the event vocabulary; each event keeps the version it "
        "was coded with (its vocabulary_version)."
    )
    event_types = VocabularyEventTypeSerializer(many=True)
    quad_classes = VocabularyValueSerializer(many=True)
    mode = VocabularyModeSerializer()
    contexts = VocabularyValueSerializer(many=True, help_text="An event's context values.")
    statuses = VocabularyValueSerializer(many=True, help_text="An event's status.")
    review_statuses = VocabularyValueSerializer(
        many=True, help_text="The review status of an event or statement."
    )
    participant_roles = VocabularyValueSerializer(many=True)
    statement_kinds = VocabularyValueSerializer(many=True)
    stances = VocabularyValueSerializer(many=True, help_text="A statement's stance (optional).")
    statement_actor_roles = VocabularyValueSerializer(
        many=True, help_text="How a statement links an actor besides its speaker."
    )
    actor_kinds = VocabularyValueSerializer(many=True)
    sectors = VocabularyValueSerializer(many=True, help_text="An actor's sector (optional).")
    place_kinds = VocabularyValueSerializer(many=True)
    date_precisions = VocabularyValueSerializer(
        many=True, help_text="The precision of the dates of events, statements, affiliations."
    )
    identifier_schemes = VocabularyIdentifierSchemeSerializer(many=True)


# The view --------------------------------------------------------------------


def none_match(header: str, etag: str) -> bool:
    """Does an If-None-Match header name `etag` (weak comparison, RFC 9110)?"""
    if header.strip() == "*":
        return True
    return any(tag == etag.strip('"') for _weak, tag in ENTITY_TAG.findall(header))


class VocabularyView(StrictQueryMixin, APIView):
    """The codebook: open to everyone, the same for everyone, cacheable."""

    permission_classes = [AllowAny]
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        operation_id="vocabulary_retrieve",
        summary="Get the codebook",
        description="Every value the data is coded with, each with a label and a "
        "description: event types with their PLOVER quad class, quad classes, how modes "
        "are written, contexts, event statuses, review statuses, participant roles, "
        "statement kinds, stances, the roles of a statement's actors, actor kinds, "
        "sectors, place kinds, date precisions and identifier schemes; and the version "
        "of the event vocabulary. The `ETag` changes only when the codebook does: send "
        "it in `If-None-Match` to get 304.",
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                str,
                OpenApiParameter.HEADER,
                description="An ETag the client holds: 304 if the codebook is still at it.",
            )
        ],
        responses={
            200: VocabularySerializer,
            304: OpenApiResponse(description="Not modified: the codebook is at the ETag sent."),
        },
    )
    def get(self, request):
        data, etag = rendered()
        headers = {"ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE}"}
        if none_match(request.headers.get("If-None-Match", ""), etag):
            return Response(status=304, headers=headers)
        return Response(data, headers=headers)
