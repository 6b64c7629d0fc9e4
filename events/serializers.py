"""JSON representations of places, events and statements.

Read serializers (`EventSerializer`, ...) nest what a client needs to make sense
of a record without further calls; write serializers (`EventWriteSerializer`,
...) take ids and validate input before the services store it.
"""

from django.conf import settings
from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from actors.models import Actor
from actors.serializers import ActorRefSerializer
from events.documents import ANNOTATION_FORMAT, SECTION_FIELDS
from events.models import (
    Event,
    EventParticipant,
    ParticipantRole,
    Place,
    QuadClass,
    Stance,
    Statement,
    StatementActor,
)
from ledger.api.serializers import (
    SLUG_HELP,
    DatedInputMixin,
    IdField,
    IsoDateField,
    StrictCharField,
    StrictInputMixin,
    absolute_url,
)
from sources.serializers import EvidenceInputSerializer, EvidenceSerializer


class PlaceRefSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="place-detail")

    class Meta:
        model = Place
        fields = ["id", "url", "name", "kind", "country"]
        read_only_fields = fields


class EventRefSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="event-detail")

    class Meta:
        model = Event
        fields = ["id", "url", "title"]
        read_only_fields = fields


# Places -------------------------------------------------------------------------


class PlaceSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="place-detail")

    class Meta:
        model = Place
        fields = [
            "id",
            "url",
            "revision",
            "slug",
            "name",
            "kind",
            "country",
            "latitude",
            "longitude",
            "geonames_id",
            "merged_into",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PlaceWriteSerializer(StrictInputMixin, serializers.ModelSerializer):
    class Meta:
        model = Place
        fields = ["slug", "name", "kind", "country", "latitude", "longitude", "geonames_id"]
        extra_kwargs = {"slug": {"required": False, "help_text": SLUG_HELP}}
        kept_when_omitted = ("slug",)  # by a full update (RevisionedViewSet)

    def validate(self, attrs):
        instance = self.instance
        latitude = attrs.get("latitude", getattr(instance, "latitude", None))
        longitude = attrs.get("longitude", getattr(instance, "longitude", None))
        if (latitude is None) != (longitude is None):
            raise serializers.ValidationError(
                {"longitude": "Give latitude and longitude together, or neither."}
            )
        return attrs


# Events -------------------------------------------------------------------------


class ParticipantSerializer(serializers.ModelSerializer):
    actor = ActorRefSerializer(read_only=True)

    class Meta:
        model = EventParticipant
        fields = ["actor", "role"]
        read_only_fields = fields


class ParticipantInputSerializer(StrictInputMixin, serializers.Serializer):
    actor = IdField(queryset=Actor.objects.all())
    role = serializers.ChoiceField(choices=ParticipantRole.choices)


ACTOR_REF_EXAMPLE = {
    "id": 2,
    "url": "https://ledger.example.org/api/v1/actors/2/",
    "name": "Russia",
    "kind": "country",
}


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "An invasion",
            response_only=True,
            value={
                "id": 1,
                "url": "https://ledger.example.org/api/v1/events/1/",
                "type": "ASSAULT",
                "quad_class": "material_conflict",
                "mode": "invasion",
                "context": ["military", "territory"],
                "vocabulary_version": "el-plover-1.0",
                "status": "occurred",
                "title": "Russia invades Ukraine",
                "summary": "Russia's invasion of Ukraine.",
                "date_start": None,
                "date_end": "2023-11-09",
                "date_precision": "unknown",
                "date_display": "before 9 Nov 2023",
                "place": {
                    "id": 2,
                    "url": "https://ledger.example.org/api/v1/places/2/",
                    "name": "Ukraine",
                    "kind": "country",
                    "country": "UKR",
                },
                "place_text": "Ukraine",
                "participants": [
                    {"actor": ACTOR_REF_EXAMPLE, "role": "initiator"},
                    {
                        "actor": {
                            "id": 4,
                            "url": "https://ledger.example.org/api/v1/actors/4/",
                            "name": "Ukraine",
                            "kind": "country",
                        },
                        "role": "target",
                    },
                ],
                "evidence": [
                    {"source": 1, "start": 71, "end": 101, "quote": "Russia’s invasion of Ukraine"}
                ],
                "review_status": "reviewed",
                "statements_url": "https://ledger.example.org/api/v1/statements/?about_event=1",
                "created_at": "2023-11-10T09:00:00Z",
                "updated_at": "2023-11-10T09:00:00Z",
            },
        )
    ]
)
class EventSerializer(serializers.ModelSerializer):
    """An event with its participants, place and evidence."""

    url = serializers.HyperlinkedIdentityField(view_name="event-detail")
    quad_class = serializers.ChoiceField(
        choices=QuadClass.choices,
        read_only=True,
        allow_null=True,
        help_text="PLOVER quad class, derived from the type (null for DISSOLVE).",
    )
    date_display = serializers.CharField(
        read_only=True, help_text='The date at its precision, e.g. "before 9 Nov 2023".'
    )
    # Declared: read-only fields lose allow_blank, and the schema must admit "".
    mode = serializers.CharField(read_only=True, help_text="How it was done; may be empty.")
    place = PlaceRefSerializer(read_only=True, allow_null=True)
    participants = ParticipantSerializer(many=True, read_only=True)
    evidence = EvidenceSerializer(many=True, read_only=True)
    statements_url = serializers.SerializerMethodField()

    @staticmethod
    def eager(queryset):
        # 1 query for the events with their places, 1 for participants with
        # their actors, 1 for evidence: 3 whatever the page size.
        return queryset.select_related("place").prefetch_related(
            Prefetch(
                "participants", EventParticipant.objects.select_related("actor").order_by("id")
            ),
            "evidence",  # ordered by Evidence.Meta.ordering
        )

    class Meta:
        model = Event
        fields = [
            "id",
            "url",
            "revision",
            "type",
            "quad_class",
            "mode",
            "context",
            "vocabulary_version",
            "status",
            "title",
            "summary",
            "date_start",
            "date_end",
            "date_precision",
            "date_display",
            "place",
            "place_text",
            "participants",
            "evidence",
            "review_status",
            "statements_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_statements_url(self, event: Event) -> str:
        path = f"{reverse('statement-list')}?about_event={event.pk}"
        return absolute_url(self.context.get("request"), path)


class EventListItemSerializer(EventSerializer):
    """An event of the list: with `q`, also the snippet of its match. The list
    is built by events/representations.py; this documents its schema."""

    # Not read-only, so that the schema does not require it: it is there only
    # with `q`. The list's answer is never read back as input.
    snippet = serializers.CharField(
        required=False,
        allow_null=True,
        help_text="With q only: plain text (never HTML) of the best matching evidence quote, "
        "or else of the title and summary, cut to the match, the matching words between "
        "« and » (a « or » of the text itself is shown as ‹ or ›).",
    )

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "snippet"]
        read_only_fields = EventSerializer.Meta.fields


EVENT_EXAMPLE = {
    "type": "CONSULT",
    "mode": "mediated-talks",
    "context": ["diplomatic", "territory"],
    "status": "occurred",
    "title": "Armenia and Azerbaijan hold border talks in Brussels",
    "summary": "",
    "date_start": "2024-03-15",
    "date_end": "2024-03-15",
    "date_precision": "day",
    "place": 6,
    "place_text": "Brussels",
    "review_status": "draft",
    "participants": [
        {"actor": 1, "role": "participant"},
        {"actor": 3, "role": "participant"},
        {"actor": 6, "role": "mediator"},
    ],
    "evidence": [
        {"source": 2, "quote": "Armenia and Azerbaijan held border talks in Brussels on Friday"}
    ],
}


@extend_schema_serializer(
    examples=[OpenApiExample("Mediated talks", value=EVENT_EXAMPLE, request_only=True)]
)
class EventWriteSerializer(StrictInputMixin, DatedInputMixin, serializers.ModelSerializer):
    """Participants and evidence, when given, replace the current ones."""

    participants = ParticipantInputSerializer(many=True, required=False)
    evidence = EvidenceInputSerializer(many=True, allow_empty=False)

    class Meta:
        model = Event
        fields = [
            "type",
            "mode",
            "context",
            "status",
            "title",
            "summary",
            "date_start",
            "date_end",
            "date_precision",
            "place",
            "place_text",
            "review_status",
            "participants",
            "evidence",
        ]

    def validate_participants(self, participants):
        pairs = [(p["actor"].pk, p["role"]) for p in participants]
        if len(pairs) != len(set(pairs)):
            raise serializers.ValidationError("An actor is listed twice in the same role.")
        return participants


# Statements ---------------------------------------------------------------------


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A criticism",
            response_only=True,
            value={
                "id": 4,
                "url": "https://ledger.example.org/api/v1/statements/4/",
                "speaker": ACTOR_REF_EXAMPLE,
                "kind": "criticism",
                "content": "Russia criticized Armenia's actions.",
                "quote": "",
                "stance": "critical",
                "date_start": None,
                "date_end": "2023-11-09",
                "date_precision": "unknown",
                "date_display": "before 9 Nov 2023",
                "targets": [
                    {
                        "id": 1,
                        "url": "https://ledger.example.org/api/v1/actors/1/",
                        "name": "Armenia",
                        "kind": "country",
                    }
                ],
                "about_actors": [],
                "about_events": [],
                "evidence": [
                    {
                        "source": 1,
                        "start": 1307,
                        "end": 1336,
                        "quote": "criticizing Armenia’s actions",
                    }
                ],
                "review_status": "draft",
                "created_at": "2023-11-10T09:00:00Z",
                "updated_at": "2023-11-10T09:00:00Z",
            },
        )
    ]
)
class StatementSerializer(serializers.ModelSerializer):
    """A statement with its speaker, the actors and events it concerns, and evidence."""

    url = serializers.HyperlinkedIdentityField(view_name="statement-detail")
    speaker = ActorRefSerializer(read_only=True)
    stance = serializers.ChoiceField(choices=Stance.choices, allow_blank=True, read_only=True)
    date_display = serializers.CharField(read_only=True)
    targets = ActorRefSerializer(many=True, read_only=True)
    about_actors = ActorRefSerializer(many=True, read_only=True)
    about_events = EventRefSerializer(many=True, read_only=True)
    evidence = EvidenceSerializer(many=True, read_only=True)

    @staticmethod
    def eager(queryset):
        # 1 query for the statements with their speakers, 1 for the linked actors,
        # 1 for the events they are about, 1 for evidence: 4 whatever the page size.
        return queryset.select_related("speaker").prefetch_related(
            Prefetch("actor_links", StatementActor.objects.select_related("actor").order_by("id")),
            Prefetch("about_events", Event.objects.order_by("id")),
            "evidence",  # ordered by Evidence.Meta.ordering
        )

    class Meta:
        model = Statement
        fields = [
            "id",
            "url",
            "revision",
            "speaker",
            "kind",
            "content",
            "quote",
            "stance",
            "date_start",
            "date_end",
            "date_precision",
            "date_display",
            "targets",
            "about_actors",
            "about_events",
            "evidence",
            "review_status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "An appeal with a verbatim quote",
            value={
                "speaker": 1,
                "kind": "appeal",
                "content": 'Urges the international community to prevent "ethnic cleansing".',
                "quote": "ethnic cleansing",
                "stance": "",
                "date_start": None,
                "date_end": "2023-11-09",
                "date_precision": "unknown",
                "targets": [13],
                "about_actors": [12],
                "about_events": [14],
                "review_status": "draft",
                "evidence": [
                    {
                        "source": 1,
                        "quote": "it urges the international community to prevent "
                        "“ethnic cleansing” in the region",
                    }
                ],
            },
            request_only=True,
        )
    ]
)
class StatementWriteSerializer(StrictInputMixin, DatedInputMixin, serializers.ModelSerializer):
    """Lists given (targets, about_actors, about_events, evidence) replace the
    current ones. A verbatim `quote` must lie inside one of the cited spans."""

    targets = IdField(queryset=Actor.objects.all(), many=True, required=False)
    about_actors = IdField(queryset=Actor.objects.all(), many=True, required=False)
    about_events = IdField(queryset=Event.objects.all(), many=True, required=False)
    evidence = EvidenceInputSerializer(many=True, allow_empty=False)

    class Meta:
        model = Statement
        fields = [
            "speaker",
            "kind",
            "content",
            "quote",
            "stance",
            "date_start",
            "date_end",
            "date_precision",
            "targets",
            "about_actors",
            "about_events",
            "review_status",
            "evidence",
        ]


# Mentions -----------------------------------------------------------------------


class MentionMatchSerializer(serializers.Serializer):
    """A stored actor or place that a span of the text may name."""

    kind = serializers.ChoiceField(choices=["actor", "place"])
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField(help_text="The record's name (the span may be an alias).")


class NameMentionSerializer(serializers.Serializer):
    """A span of the text that is the name or an alias of stored records."""

    start = serializers.IntegerField(help_text="Offset of the first character (code points).")
    end = serializers.IntegerField(help_text="Offset just past the last character.")
    text = serializers.CharField(help_text="The span's words as the text has them.")
    matches = MentionMatchSerializer(
        many=True, help_text="Every actor and place of that name or alias (actors first)."
    )


class DateMentionSerializer(serializers.Serializer):
    """A date the text states, with the days it covers."""

    start = serializers.IntegerField(help_text="Offset of the first character (code points).")
    end = serializers.IntegerField(help_text="Offset just past the last character.")
    text = serializers.CharField()
    date_start = serializers.DateField(help_text="The first day the date covers.")
    date_end = serializers.DateField(help_text="The last day the date covers.")
    date_precision = serializers.ChoiceField(choices=["day", "month", "year"])


class QuoteMentionSerializer(serializers.Serializer):
    """A passage between double quotes: the words inside the marks."""

    start = serializers.IntegerField(help_text="Offset of the first character (code points).")
    end = serializers.IntegerField(help_text="Offset just past the last character.")
    text = serializers.CharField()


class MentionsSerializer(serializers.Serializer):
    """What an annotator of a text may want to record, in the order of the text."""

    names = NameMentionSerializer(many=True)
    dates = DateMentionSerializer(many=True)
    quotes = QuoteMentionSerializer(many=True)


# Documents --------------------------------------------------------------------


class DocumentWriteSerializer(StrictInputMixin, serializers.Serializer):
    """A source document with its annotation, to store in one go."""

    text = StrictCharField(
        trim_whitespace=False, help_text="The document's full text, as published."
    )
    published_on = IsoDateField(required=False, allow_null=True)
    annotation = serializers.JSONField(
        help_text="What the document reports, in the annotation format of fixtures/README.md "
        "(`format: event-ledger-annotation/1`, then source, actors, places, affiliations, "
        "events and statements, each citing its evidence by quoting the text). Actors and "
        "places are found among those stored (by identifier, slug, then name or alias) or "
        "created; a reference may name a stored record by id, slug or identifier "
        "(`wikidata:Q399`)."
    )

    def validate_annotation(self, value):
        if not isinstance(value, dict) or value.get("format") != ANNOTATION_FORMAT:
            raise serializers.ValidationError(f"Give an object with format: {ANNOTATION_FORMAT}.")
        limit = settings.API_MAX_LIST_ITEMS * 10
        for section in SECTION_FIELDS:
            items = value.get(section)
            if isinstance(items, list) and len(items) > limit:
                raise serializers.ValidationError(
                    f"At most {limit} {section} per document; this one has {len(items)}."
                )
        return value


class DocumentReapplySerializer(DocumentWriteSerializer):
    """A corrected annotation for a stored document."""

    text = StrictCharField(
        trim_whitespace=False,
        required=False,
        help_text="The document's text, if sent, must be the stored one: a text never changes.",
    )


class DocumentSerializer(serializers.Serializer):
    """A stored document: its source, the annotation it was last loaded with,
    and the records that annotation produced."""

    source = serializers.URLField()
    annotation = serializers.JSONField(help_text="As last applied (YAML dates as ISO text).")
    annotation_sha256 = serializers.CharField(
        help_text="The digest of the annotation's content (also the response's ETag)."
    )
    records = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="The ids of the affiliations, events and statements it produced.",
    )


class DocumentProblemSerializer(serializers.Serializer):
    pointer = serializers.CharField(help_text="JSON pointer into the request body.")
    detail = serializers.CharField()
    code = serializers.CharField()
    hint = serializers.CharField(
        required=False, help_text="How to fix it, where the service can tell."
    )


class DocumentMatchSerializer(serializers.Serializer):
    pointer = serializers.CharField()
    key = serializers.CharField(help_text="The declaration's key in the annotation.")
    id = serializers.IntegerField(help_text="The stored record it was found to be.")
    by = serializers.CharField(help_text="identifier <scheme>:<value>, slug, name or alias.")


class DocumentAdditionSerializer(serializers.Serializer):
    pointer = serializers.CharField()
    id = serializers.IntegerField(help_text="The stored record that gains it.")
    field = serializers.CharField()
    added = serializers.JSONField()


class DocumentSuggestionSerializer(serializers.Serializer):
    pointer = serializers.CharField()
    detail = serializers.CharField()


class DocumentChangeSerializer(serializers.Serializer):
    pointer = serializers.CharField(
        required=False, help_text="The item that changed it, if one is left."
    )
    resource = serializers.CharField(help_text="sources, affiliations, events or statements.")
    id = serializers.IntegerField()


class DocumentReportSerializer(serializers.Serializer):
    """What storing a document did, or (dry run) would do."""

    dry_run = serializers.BooleanField()
    valid = serializers.BooleanField(help_text="Whether the document can be stored as it is.")
    source = serializers.URLField(
        allow_null=True, help_text="The stored source (null on a dry run or with problems)."
    )
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Records created (or to be), per section."
    )
    matched = DocumentMatchSerializer(many=True)
    additions = DocumentAdditionSerializer(many=True)
    suggestions = DocumentSuggestionSerializer(many=True)
    updated = DocumentChangeSerializer(
        many=True, help_text="Records the document produced before that changed (re-applied)."
    )
    deleted = DocumentChangeSerializer(
        many=True,
        help_text="Records the document produced before and no longer describes (re-applied).",
    )
    problems = DocumentProblemSerializer(many=True)
    mentions = MentionsSerializer(
        allow_null=True,
        help_text="On a dry run: what the text mentions, as GET /sources/{id}/mentions/ "
        "gives it for a stored source (names of stored actors and places, dates, quotes), "
        "to annotate from. Null otherwise.",
    )
