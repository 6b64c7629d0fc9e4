"""The "idiomatic DRF" reference for the event list: nested ModelSerializers with
the fields of the API's EventSerializer, eager loading with select_related and
prefetch_related, and the first `page_size` rows newest first.

There is no COUNT(*) and no keyset: the first page is a plain slice, so the
comparison measures serialization and querying, not pagination.
"""

from django.db.models import Prefetch
from django.urls import reverse
from rest_framework import generics, serializers

from actors.models import Actor
from events import serializers as api
from events.models import Event, EventParticipant, Place
from sources.models import Evidence

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class ActorSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="actor-detail")

    class Meta:
        model = Actor
        fields = ["id", "url", "name", "kind"]


class PlaceSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="place-detail")

    class Meta:
        model = Place
        fields = ["id", "url", "name", "kind", "country"]


class ParticipantSerializer(serializers.ModelSerializer):
    actor = ActorSerializer(read_only=True)

    class Meta:
        model = EventParticipant
        fields = ["actor", "role"]


class EvidenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Evidence
        fields = ["source", "start", "end", "quote"]


class EventSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="event-detail")
    place = PlaceSerializer(read_only=True)
    participants = ParticipantSerializer(many=True, read_only=True)
    evidence = EvidenceSerializer(many=True, read_only=True)
    statements_url = serializers.SerializerMethodField()

    class Meta:
        model = Event
        fields = api.EventSerializer.Meta.fields  # the same fields as the API's

    def get_statements_url(self, event: Event) -> str:
        path = f"{reverse('statement-list')}?about_event={event.pk}"
        return self.context["request"].build_absolute_uri(path)


class BaselineEventList(generics.ListAPIView):
    """GET /bench/baseline/events/?page_size=50: the newest events."""

    serializer_class = EventSerializer
    pagination_class = None

    def get_queryset(self):
        raw = self.request.query_params.get("page_size", "")
        size = min(int(raw), MAX_PAGE_SIZE) if raw.isdigit() else DEFAULT_PAGE_SIZE
        queryset = Event.objects.select_related("place").prefetch_related(
            Prefetch("participants", EventParticipant.objects.select_related("actor")),
            "evidence",
        )
        return queryset.order_by("-date_sort", "-id")[:size]
