"""API views of sources, places, events and statements, the shared base
viewset whose writes go through the services, and the health checks."""

from django.core.exceptions import FieldDoesNotExist
from django.db import connection, models, transaction
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.response import Response

from events.api import problem_response
from events.filters import EventFilterSet, PlaceFilterSet, SourceFilterSet, StatementFilterSet
from events.models import Event, Place, Source, Statement
from events.serializers import (
    EventSerializer,
    EventWriteSerializer,
    PlaceSerializer,
    PlaceWriteSerializer,
    SourceSerializer,
    SourceWriteSerializer,
    StatementSerializer,
    StatementWriteSerializer,
)
from events.services import (
    event_create,
    event_delete,
    event_update,
    place_create,
    place_delete,
    place_update,
    source_create,
    source_update,
    statement_create,
    statement_delete,
    statement_update,
)

DATE_ORDERINGS = {
    "date": ("date_sort", "id"),
    "-date": ("-date_sort", "-id"),
    "id": ("id",),
    "-id": ("-id",),
}
NAME_ORDERINGS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "id": ("id",),
    "-id": ("-id",),
}
ID_ORDERINGS = {"id": ("id",), "-id": ("-id",)}


def crud_docs(singular: str, plural: str, about: str, read, write, *, delete: bool = True) -> dict:
    """Summaries, descriptions and bodies of a resource's operations for the
    OpenAPI document: writes take `write` and answer with `read`."""
    a_singular = singular_article(singular)
    docs = {
        "list": extend_schema(
            summary=f"List {plural}",
            description=f"{about}\n\nCursor-paginated: follow `next` until it is null. "
            "Filters combine with AND.",
        ),
        "retrieve": extend_schema(summary=f"Get one {singular}", description=about),
        "create": extend_schema(
            summary=f"Create {a_singular}",
            description=f"Needs the add permission on {plural}. Answers with the stored "
            "representation and its URL in `Location`.",
            request=write,
            responses={201: read},
        ),
        "update": extend_schema(
            summary=f"Replace {a_singular}",
            description=f"Needs the change permission on {plural}. Fields left out take "
            "their defaults; lists given replace the current ones.",
            request=write,
            responses={200: read},
        ),
        "partial_update": extend_schema(
            summary=f"Change {a_singular}",
            description=f"Needs the change permission on {plural}. Only the fields given "
            "change; lists given replace the current ones.",
            request=write,
            responses={200: read},
        ),
    }
    if delete:
        docs["destroy"] = extend_schema(
            summary=f"Delete {a_singular}",
            description=f"Needs the delete permission on {plural}. A record that others "
            "still refer to is kept and the answer is 409.",
        )
    return docs


def singular_article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


class ServiceViewSet(viewsets.ModelViewSet):
    """A model viewset whose writes go through service functions.

    Subclasses set `serializer_class` (read), `write_serializer_class` (input),
    and implement `perform_service_create(data)`, `perform_service_update(
    instance, data, partial)` and, when deletion is allowed,
    `perform_service_delete(instance)`. Responses always carry the read
    representation, re-read with the view's eager loading.
    """

    write_serializer_class = None
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return self.write_serializer_class
        return self.serializer_class

    def read_representation(self, instance: models.Model) -> dict:
        fresh = self.get_queryset().get(pk=instance.pk)
        return self.serializer_class(fresh, context=self.get_serializer_context()).data

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            instance = self.perform_service_create(serializer.validated_data)
        data = self.read_representation(instance)
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not partial:
            data = {**self.omitted_field_defaults(serializer), **data}
        with transaction.atomic():
            instance = self.perform_service_update(instance, data, partial)
        return Response(self.read_representation(instance))

    @staticmethod
    def omitted_field_defaults(serializer) -> dict:
        """For a full update (PUT): the model defaults of the scalar fields the
        body left out, so that they are reset rather than kept."""
        model = serializer.Meta.model
        defaults = {}
        for field in serializer.fields.values():
            if field.read_only or isinstance(
                field, serializers.ListSerializer | serializers.ManyRelatedField
            ):
                continue
            try:
                model_field = model._meta.get_field(field.source)
            except FieldDoesNotExist:
                continue
            if model_field.concrete and not model_field.many_to_many:
                defaults[field.source] = model_field.get_default()
        return defaults

    def destroy(self, request, *args, **kwargs):
        instance = self.get_object()
        with transaction.atomic():
            self.perform_service_delete(instance)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_service_create(self, data: dict) -> models.Model:
        raise NotImplementedError

    def perform_service_update(self, instance: models.Model, data: dict, partial: bool):
        raise NotImplementedError

    def perform_service_delete(self, instance: models.Model) -> None:
        raise exceptions.MethodNotAllowed("DELETE")


@extend_schema_view(
    **crud_docs(
        "source",
        "sources",
        "A document that facts come from, with its full text and the sha256 of that text. "
        "Evidence spans point into the text by character offsets.",
        SourceSerializer,
        SourceWriteSerializer,
        delete=False,
    )
)
class SourceViewSet(ServiceViewSet):
    queryset = Source.objects.all()
    serializer_class = SourceSerializer
    write_serializer_class = SourceWriteSerializer
    filterset_class = SourceFilterSet
    orderings = ID_ORDERINGS
    default_ordering = "-id"
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def perform_service_create(self, data):
        return source_create(**data)

    def perform_service_update(self, instance, data, partial):
        return source_update(source=instance, fields=data)


@extend_schema_view(
    **crud_docs(
        "place",
        "places",
        "A named location, with optional coordinates.",
        PlaceSerializer,
        PlaceWriteSerializer,
    )
)
class PlaceViewSet(ServiceViewSet):
    queryset = Place.objects.all()
    serializer_class = PlaceSerializer
    write_serializer_class = PlaceWriteSerializer
    filterset_class = PlaceFilterSet
    orderings = NAME_ORDERINGS
    default_ordering = "name"

    def perform_service_create(self, data):
        return place_create(**data)

    def perform_service_update(self, instance, data, partial):
        return place_update(place=instance, fields=data)

    def perform_service_delete(self, instance):
        place_delete(place=instance)


@extend_schema_view(
    **crud_docs(
        "event",
        "events",
        "Who did what to whom, when and where: a typed event (docs/vocabulary.md) with "
        "its participants in their roles, its place, a dated interval with precision, "
        "and the evidence spans it rests on.",
        EventSerializer,
        EventWriteSerializer,
    )
)
class EventViewSet(ServiceViewSet):
    queryset = EventSerializer.eager(Event.objects.all())
    serializer_class = EventSerializer
    write_serializer_class = EventWriteSerializer
    filterset_class = EventFilterSet
    orderings = DATE_ORDERINGS
    default_ordering = "-date"
    ordering_description = (
        "date: by the earliest known date, then id; -date: newest first; id, -id: by id."
    )

    def perform_service_create(self, data):
        return event_create(
            participants=[(p["actor"], p["role"]) for p in data.pop("participants", [])],
            evidence=data.pop("evidence"),
            **data,
        )

    def perform_service_update(self, instance, data, partial):
        participants = data.pop("participants", None)
        if participants is None and not partial:
            participants = []
        return event_update(
            event=instance,
            participants=None
            if participants is None
            else [(p["actor"], p["role"]) for p in participants],
            evidence=data.pop("evidence", None),
            fields=data,
        )

    def perform_service_delete(self, instance):
        event_delete(event=instance)


@extend_schema_view(
    **crud_docs(
        "statement",
        "statements",
        "What an actor said: the speaker, the kind of speech act, a paraphrase, the "
        "verbatim words when the source quotes them, whom it addresses, what it is "
        "about, and the evidence spans it rests on.",
        StatementSerializer,
        StatementWriteSerializer,
    )
)
class StatementViewSet(ServiceViewSet):
    queryset = StatementSerializer.eager(Statement.objects.all())
    serializer_class = StatementSerializer
    write_serializer_class = StatementWriteSerializer
    filterset_class = StatementFilterSet
    orderings = DATE_ORDERINGS
    default_ordering = "-date"
    ordering_description = EventViewSet.ordering_description

    def perform_service_create(self, data):
        return statement_create(**data)

    def perform_service_update(self, instance, data, partial):
        lists = {
            name: data.pop(name, None if partial else [])
            for name in ("targets", "about_actors", "about_events")
        }
        return statement_update(
            statement=instance, evidence=data.pop("evidence", None), fields=data, **lists
        )

    def perform_service_delete(self, instance):
        statement_delete(statement=instance)


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive (no database access)."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest):
    """The database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return problem_response(
            503,
            "Service Unavailable",
            "The database does not answer.",
            headers={"Retry-After": "5"},
        )
    return JsonResponse({"status": "ok", "database": "ok"})
