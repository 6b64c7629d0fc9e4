"""API views of sources, places, events and statements, the shared base
viewset whose writes go through the services, and the health checks."""

import base64
import binascii
import contextlib
import json

import psycopg.errors
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import OperationalError, connection, models, transaction
from django.db.models.expressions import RawSQL
from django.http import Http404, HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from actors.models import Actor, Affiliation
from actors.serializers import ActorSerializer, AffiliationSerializer
from events import idempotency
from events.api import (
    ENTITY_TAG,
    MAX_ID,
    FilterBackend,
    Gone,
    InvalidQuery,
    PreconditionFailed,
    PreconditionRequired,
    SearchThrottle,
    ServiceUnavailable,
    StrictQueryMixin,
    check_if_match,
    date_from_iso,
    page_size_from,
    problem_response,
)
from events.export import FORMATS as EXPORT_FORMATS
from events.export import (
    BoundedExport,
    ExportSlots,
    count_at_most,
    export_query,
    stream,
    stream_in_parallel,
)
from events.export import slices as export_slices
from events.filters import (
    EventEvidenceSearchFilterSet,
    EventFilterSet,
    EventTextSearchFilterSet,
    PlaceFilterSet,
    SourceFilterSet,
    StatementFilterSet,
)
from events.history import (
    Reconstruction,
    context_summary,
    has_history,
    record_api_context,
    revisions,
    with_representations,
)
from events.models import Change, Event, Place, Source, Statement
from events.representations import ROW_KEYS, EventShaper, fetch_rows, json_response, plain
from events.serializers import (
    ChangeFeedSerializer,
    EventSerializer,
    EventWriteSerializer,
    HistorySerializer,
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

# Feed resource name -> (URL basename, model, read serializer)
FEED_RESOURCES = {
    "actors": ("actor", Actor, ActorSerializer),
    "affiliations": ("affiliation", Affiliation, AffiliationSerializer),
    "events": ("event", Event, EventSerializer),
    "places": ("place", Place, PlaceSerializer),
    "sources": ("source", Source, SourceSerializer),
    "statements": ("statement", Statement, StatementSerializer),
}

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

# The views that search (`q`): counted by the search throttle besides the others.
SEARCH_THROTTLES = [*api_settings.DEFAULT_THROTTLE_CLASSES, SearchThrottle]


class SearchTimeout(ServiceUnavailable):
    default_code = "search-timeout"


@contextlib.contextmanager
def search_time_limit(searching: bool):
    """Run the block's queries, when `searching`, in a transaction whose
    statements may take SEARCH_TIMEOUT_MS (rather than the general statement
    timeout): a search that runs longer is answered 503, asking to narrow it."""
    if not searching or settings.SEARCH_TIMEOUT_MS <= 0:
        yield
        return
    nested = connection.in_atomic_block
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SET LOCAL statement_timeout = %s", [int(settings.SEARCH_TIMEOUT_MS)]
                )
            yield
            if nested:  # SET LOCAL outlives a savepoint: the enclosing transaction's back
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = DEFAULT")
    except OperationalError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
            raise
        raise SearchTimeout(
            f"The search took longer than {settings.SEARCH_TIMEOUT_MS} ms and was stopped; "
            "narrow it: rarer or fewer words, fewer ORs, or other filters (a date range, an "
            "actor, a type)."
        ) from None


HISTORY_PAGE_SIZE = 50
HISTORY_MAX_PAGE_SIZE = 500


def crud_docs(singular: str, plural: str, about: str, read, write, *, delete: bool = True) -> dict:
    """Summaries, descriptions and bodies of a resource's operations for the
    OpenAPI document: writes take `write` and answer with `read`."""
    a_singular = singular_article(singular)
    if_match = OpenApiParameter(
        "If-Match",
        str,
        OpenApiParameter.HEADER,
        required=True,
        description='The ETag (revision) the change is based on, e.g. "3"; * for any.',
    )
    idempotency_key = OpenApiParameter(
        "Idempotency-Key",
        str,
        OpenApiParameter.HEADER,
        description="Retries with the same key and body get the first answer and create "
        "nothing more; a different body gets 422, a retry while the first still runs 409. "
        "Keys expire after 24 hours.",
    )
    reason = OpenApiParameter(
        "X-Change-Reason",
        str,
        OpenApiParameter.HEADER,
        description="Why the change is made; kept in the history.",
    )
    docs = {
        "list": extend_schema(
            summary=f"List {plural}",
            description=f"{about}\n\nCursor-paginated: follow `next` until it is null. "
            "Filters combine with AND.",
        ),
        "create": extend_schema(
            summary=f"Create {a_singular}",
            description=f"Needs the add permission on {plural}. Answers with the stored "
            "representation and its URL in `Location`.",
            request=write,
            responses={201: read},
            parameters=[idempotency_key, reason],
        ),
        "update": extend_schema(
            summary=f"Replace {a_singular}",
            description=f"Needs the change permission on {plural} and `If-Match` with the "
            "current ETag. Fields left out take their defaults; lists given replace the "
            "current ones. An `X-Change-Reason` header is kept in the history.",
            request=write,
            responses={200: read},
            parameters=[if_match, reason],
        ),
        "partial_update": extend_schema(
            summary=f"Change {a_singular}",
            description=f"Needs the change permission on {plural} and `If-Match` with the "
            "current ETag. Only the fields given change; lists given replace the current "
            "ones. An `X-Change-Reason` header is kept in the history.",
            request=write,
            responses={200: read},
            parameters=[if_match, reason],
        ),
    }
    docs["history"] = extend_schema(
        operation_id=f"{plural}_history_list",
        summary=f"List the revisions of {a_singular}",
        description="Newest first: when, who, through what (api, admin, seed, shell), the "
        "request ids, the reason given, and the fields that changed with their values "
        "before and after. A deleted record keeps its history. Paginated like every "
        "list: follow `next`. Anonymous readers see each writer as a stable pseudonym "
        "(`writer-1a2b3c4d`) and no sign-in method or request ids; signed-in users see "
        "the account names.",
        parameters=[
            OpenApiParameter("cursor", str, description="Opaque position from `next`."),
            OpenApiParameter(
                "page_size",
                int,
                description=f"Revisions per page, 1 to {HISTORY_MAX_PAGE_SIZE} "
                f"(default {HISTORY_PAGE_SIZE}).",
            ),
        ],
        responses={200: HistorySerializer},
    )
    docs["history_revision"] = extend_schema(
        operation_id=f"{plural}_history_retrieve",
        summary=f"Get {a_singular} as it was at a revision",
        description="The full representation at that revision, child rows included.",
        parameters=[OpenApiParameter("revision", int, OpenApiParameter.PATH)],
        responses={200: read},
    )
    docs["retrieve"] = extend_schema(
        summary=f"Get one {singular}",
        description=f"{about}\n\nThe `ETag` is the revision: send it in `If-None-Match` to "
        "get 304 when nothing changed, and in `If-Match` to write. With `as_of` "
        "(an ISO 8601 time), the record as it was then.",
        parameters=[
            OpenApiParameter(
                "as_of", OpenApiTypes.DATETIME, description="Show the record as it was then."
            ),
            OpenApiParameter(
                "If-None-Match",
                str,
                OpenApiParameter.HEADER,
                description="An ETag the client holds: 304 if the record is still at it.",
            ),
        ],
        responses={
            200: read,
            304: OpenApiResponse(description="Not modified: the record is at the ETag sent."),
        },
    )
    if delete:
        docs["destroy"] = extend_schema(
            summary=f"Delete {a_singular}",
            description=f"Needs the delete permission on {plural} and `If-Match` with the "
            "current ETag. A record that others still refer to is kept and the answer is "
            "409. The history stays readable; the record then answers 410.",
            parameters=[if_match, reason],
        )
    return docs


def singular_article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def revision_etag(revision: int) -> str:
    return f'"{revision}"'


def etag_matches(header: str, revision: int, *, weak: bool) -> bool:
    """Does an If-Match (strong comparison) or If-None-Match (weak) header name
    this revision?"""
    if header.strip() == "*":
        return True
    for is_weak, tag in ENTITY_TAG.findall(header):
        if tag == str(revision) and (weak or not is_weak):
            return True
    return False


class ServiceViewSet(StrictQueryMixin, viewsets.ModelViewSet):
    """A model viewset whose writes go through service functions, with
    revisions: reads carry an `ETag` (the revision) and honour `If-None-Match`;
    writes require `If-Match`, checked and applied under a row lock in one
    transaction; history is readable at `history/` and `?as_of=`.

    Subclasses set `serializer_class` (read), `write_serializer_class` (input),
    and implement `perform_service_create(data)`, `perform_service_update(
    instance, data, partial)` and, when deletion is allowed,
    `perform_service_delete(instance)`. Responses always carry the read
    representation, re-read with the view's eager loading.
    """

    write_serializer_class = None
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    query_parameters = {"retrieve": ("as_of",), "history": ("cursor", "page_size")}
    lookup_value_converter = "int"

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return self.write_serializer_class
        return self.serializer_class

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action in ("update", "partial_update", "destroy"):
            # The record is only checked for existence here and locked and read
            # again for the write: no related rows to load.
            queryset = queryset.model.objects.all()
        return queryset

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            pk = self.kwargs[self.lookup_field]
            if has_history(self.queryset.model, pk):
                raise Gone(self.history_url(pk)) from None
            raise

    def history_url(self, pk) -> str:
        path = reverse(f"{self.basename}-history", kwargs={"pk": pk})
        return self.request.build_absolute_uri(path)

    def read_representation(self, instance: models.Model) -> dict:
        """The record as a GET shows it (the same eager loading and order of
        child rows), whatever action asks."""
        fresh = self.queryset.all().get(pk=instance.pk)
        return self.serializer_class(fresh, context=self.get_serializer_context()).data

    def render(self, instance: models.Model) -> dict:
        return self.serializer_class(instance, context=self.get_serializer_context()).data

    def retrieve(self, request, *args, **kwargs):
        if "as_of" in request.query_params:
            return self.retrieve_as_of(request.query_params["as_of"])
        instance = self.get_object()
        headers = {"ETag": revision_etag(instance.revision)}
        if etag_matches(request.headers.get("If-None-Match", ""), instance.revision, weak=True):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(self.render(instance), headers=headers)

    def retrieve_as_of(self, raw: str):
        try:
            moment = serializers.DateTimeField().to_internal_value(raw)
        except serializers.ValidationError as exc:
            try:  # well formed, but a day that does not exist: say which
                date_from_iso(raw[:10])
            except ValueError as impossible:
                if str(impossible).startswith("Not a valid date"):
                    raise InvalidQuery({"as_of": [str(impossible)]}) from None
            raise InvalidQuery({"as_of": exc.detail}) from None
        pk = self.kwargs["pk"]
        past = [r for r in revisions(self.queryset.model, pk) if r.time <= moment]
        if not past:
            raise exceptions.NotFound("The record did not exist at that time.")
        if past[-1].snapshot is None:
            raise Gone(self.history_url(pk))
        instance = Reconstruction(self.queryset.model, pk).at(past[-1].snapshot)
        return Response(self.render(instance), headers={"ETag": revision_etag(instance.revision)})

    def create(self, request, *args, **kwargs):
        key = request.headers.get(idempotency.HEADER)
        if key is None:
            return self.create_once(request)
        stored = idempotency.claim(request, key)
        if stored is not None:
            return idempotency.replay(stored)
        try:
            response = self.create_once(request)
        except Exception as exc:
            try:
                response = self.handle_exception(exc)  # a problem answer, stored like any other
            except Exception:
                idempotency.release(request, key)
                raise
        idempotency.record(request, key, response)
        return response

    def create_once(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            record_api_context(request)
            instance = self.perform_service_create(serializer.validated_data)
        data = self.read_representation(instance)
        headers = {"Location": str(data["url"]), "ETag": revision_etag(data["revision"])}
        return Response(data, status=status.HTTP_201_CREATED, headers=headers)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        if_match = self.required_if_match()
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not partial:
            data = {**self.omitted_field_defaults(serializer), **data}
        with transaction.atomic():
            locked = self.lock_revision(instance, if_match)
            record_api_context(request)
            instance = self.perform_service_update(locked, data, partial)
        representation = self.read_representation(instance)
        return Response(representation, headers={"ETag": revision_etag(representation["revision"])})

    def destroy(self, request, *args, **kwargs):
        if_match = self.required_if_match()
        instance = self.get_object()
        with transaction.atomic():
            locked = self.lock_revision(instance, if_match)
            record_api_context(request)
            self.perform_service_delete(locked)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def required_if_match(self) -> str:
        header = self.request.headers.get("If-Match", "").strip()
        if not header:
            raise PreconditionRequired()
        check_if_match(header)
        return header

    def lock_revision(self, instance: models.Model, if_match: str) -> models.Model:
        """Lock the row and check the client's revision: the check and the write
        that follows are one atomic step."""
        locked = type(instance).objects.select_for_update().get(pk=instance.pk)
        if not etag_matches(if_match, locked.revision, weak=False):
            raise PreconditionFailed(locked.revision)
        return locked

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

    @action(detail=True, methods=["get"], url_path="history", pagination_class=None)
    def history(self, request, pk=None):
        model = self.queryset.model
        if not has_history(model, pk):
            raise exceptions.NotFound("No record with this id has ever existed.")
        size = page_size_from(
            request.query_params.get("page_size"), HISTORY_PAGE_SIZE, HISTORY_MAX_PAGE_SIZE
        )
        older_than = decode_history_cursor(request.query_params.get("cursor"))
        newest_first = [
            entry.revision
            for entry in reversed(revisions(model, pk))
            if older_than is None or entry.revision < older_than
        ]
        page = newest_first[:size]
        entries = with_representations(model, pk, self.render, only=page)
        public = not request.user.is_authenticated
        results = [
            {
                "revision": entry.revision,
                "action": entry.action,
                "time": entry.time,
                **context_summary(entry.context, public=public),
                "changes": entry.changes,
                "url": request.build_absolute_uri(
                    reverse(
                        f"{self.basename}-history-revision",
                        kwargs={"pk": pk, "revision": entry.revision},
                    )
                ),
            }
            for entry in reversed(entries)
            if entry.revision in page
        ]
        next_link = None
        if len(newest_first) > size:
            next_link = replace_query_param(
                request.build_absolute_uri(), "cursor", encode_history_cursor(page[-1])
            )
        return Response(HistorySerializer({"next": next_link, "results": results}).data)

    @action(
        detail=True,
        methods=["get"],
        url_path="history/<int:revision>",
        url_name="history-revision",
        pagination_class=None,
    )
    def history_revision(self, request, pk=None, revision=None):
        model = self.queryset.model
        if not has_history(model, pk):
            raise exceptions.NotFound("No record with this id has ever existed.")
        entries = with_representations(model, pk, self.render, only=[revision])
        entry = next((e for e in entries if e.revision == revision), None)
        if entry is None:
            raise exceptions.NotFound(f"The record has no revision {revision}.")
        if entry.representation is None:
            raise Gone(self.history_url(pk))
        return Response(entry.representation, headers={"ETag": revision_etag(entry.revision)})

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
    throttle_classes = SEARCH_THROTTLES
    orderings = DATE_ORDERINGS
    default_ordering = "-date"
    ordering_description = (
        "date: by the earliest known date, then id; -date: newest first; id, -id: by id."
    )

    # The hot read paths: rows shaped straight into the representation
    # (events/representations.py), one query per page or record.

    def list(self, request, *args, **kwargs):
        paginator = self.paginator
        # A search is two pages, one of the events whose title or summary
        # matches and one of those whose evidence does; the page is the first
        # rows of their union. Each half alone is a condition PostgreSQL can
        # estimate, so it walks the date index for a frequent word and starts
        # from the full-text index for a rare one; their OR it cannot plan well.
        searched = [EventFilterSet]
        searching = bool(request.query_params.get("q"))
        if searching:
            searched = [EventTextSearchFilterSet, EventEvidenceSearchFilterSet]
        pages = []
        for filterset_class in searched:
            self.filterset_class = filterset_class  # what filter_queryset() applies
            page = paginator.page_queryset(self.filter_queryset(Event.objects.all()), request, self)
            # (a DISTINCT page also selects its ordering columns: take its ids)
            pages.append(page.values("id").query.sql_with_params())
        self.filterset_class = EventFilterSet
        union = " UNION ALL ".join(f"SELECT k.id FROM ({sql}) k" for sql, _ in pages)
        params = [param for _, page_params in pages for param in page_params]
        order_by = paginator.order_by_sql("e")
        with search_time_limit(searching):
            rows = fetch_rows(request, f"e.id IN ({union})", params, order_by, paginator.size + 1)
        rows = paginator.finish(rows, lambda row, name: row[ROW_KEYS[name]])
        shape = EventShaper(request)
        data = {"next": paginator.get_next_link(), "results": [shape(row) for row in rows]}
        return json_response(request, data) or Response(plain(data))

    def retrieve(self, request, *args, **kwargs):
        as_of = "as_of" in request.query_params
        rows = [] if as_of else fetch_rows(request, "e.id = %s", [kwargs["pk"]])
        if not rows:
            return super().retrieve(request, *args, **kwargs)  # as_of, 404 and 410
        headers = {"ETag": revision_etag(rows[0][1])}
        if etag_matches(request.headers.get("If-None-Match", ""), rows[0][1], weak=True):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        data = EventShaper(request)(rows[0])
        return json_response(request, data, headers=headers) or Response(
            plain(data), headers=headers
        )

    def read_representation(self, instance):
        rows = fetch_rows(self.request, "e.id = %s", [instance.pk])
        return plain(EventShaper(self.request)(rows[0]))

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
    throttle_classes = SEARCH_THROTTLES
    orderings = DATE_ORDERINGS
    default_ordering = "-date"
    ordering_description = EventViewSet.ordering_description

    def list(self, request, *args, **kwargs):
        with search_time_limit(bool(request.query_params.get("q"))):
            return super().list(request, *args, **kwargs)

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


class ChangeFeedView(StrictQueryMixin, APIView):
    """The change feed: every create, update and delete across resources.
    Read-only and open to everyone, like the resources it lists."""

    permission_classes = [AllowAny]
    query_parameters = {"get": ("after", "resource", "page_size")}
    repeatable_parameters = ("resource",)
    page_size = 100
    max_page_size = 1000

    @extend_schema(
        operation_id="changes_list",
        summary="List changes since a cursor",
        description="Every create, update and delete of actors, affiliations, events, places, "
        "sources and statements, in the order their transactions were written, with "
        "tombstones for deletions. Start without `after`, keep the `cursor` of each "
        "answer, and pass it as `after` next time; follow `next` while it is set. Each "
        "change carries the record's current representation (null once deleted); keep, "
        "per record, the highest revision seen.",
        parameters=[
            OpenApiParameter("after", str, description="A `cursor` from an earlier answer."),
            OpenApiParameter(
                "resource",
                str,
                many=True,
                enum=sorted(FEED_RESOURCES),
                description="Only these resources; repeat for several.",
            ),
            OpenApiParameter("page_size", int, description="1 to 1000 (default 100)."),
        ],
        responses={200: ChangeFeedSerializer},
    )
    def get(self, request):
        after = decode_feed_cursor(request.query_params.get("after"))
        resources = request.query_params.getlist("resource")
        unknown = sorted(set(resources) - set(FEED_RESOURCES))
        if unknown:
            raise InvalidQuery({"resource": [f"Unknown resource {unknown[0]!r}."]})
        size = page_size_from(
            request.query_params.get("page_size"), self.page_size, self.max_page_size
        )
        # Ordered by commit (events.models.Change): an entry is visible only once
        # every entry before it is, so a cursor never passes a change.
        changes = Change.objects.filter(commit_seq__isnull=False)
        if resources:
            changes = changes.filter(resource__in=resources)
        if after is not None:
            changes = changes.filter(
                RawSQL(
                    '("events_change"."commit_seq", "events_change"."id") > (%s, %s)',
                    after,
                    output_field=models.BooleanField(),
                )
            )
        rows = list(changes.order_by("commit_seq", "id")[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        cursor = (
            encode_feed_cursor(rows[-1].commit_seq, rows[-1].pk)
            if rows
            else (request.query_params.get("after") or encode_feed_cursor(0, 0))
        )
        data = self.current_representations(rows)
        results = [
            {
                "resource": change.resource,
                "id": change.object_id,
                "action": change.action,
                "revision": change.revision,
                "changed_at": change.changed_at,
                "url": request.build_absolute_uri(
                    reverse(
                        f"{FEED_RESOURCES[change.resource][0]}-detail",
                        kwargs={"pk": change.object_id},
                    )
                ),
                "data": data.get((change.resource, change.object_id)),
            }
            for change in rows
        ]
        next_link = None
        if more:
            next_link = replace_query_param(request.build_absolute_uri(), "after", cursor)
        return Response(
            ChangeFeedSerializer({"next": next_link, "cursor": cursor, "results": results}).data
        )

    def current_representations(self, rows) -> dict:
        """The current representation of every record in `rows`: a few queries per
        resource type, not per change."""
        wanted: dict[str, set[int]] = {}
        for change in rows:
            wanted.setdefault(change.resource, set()).add(change.object_id)
        found = {}
        context = {"request": self.request}
        for resource, ids in wanted.items():
            _, model, serializer_class = FEED_RESOURCES[resource]
            queryset = (
                serializer_class.eager(model.objects.filter(pk__in=ids))
                if hasattr(serializer_class, "eager")
                else model.objects.filter(pk__in=ids)
            )
            for instance in queryset:
                found[(resource, instance.pk)] = serializer_class(instance, context=context).data
        return found


def encode_history_cursor(revision: int) -> str:
    token = json.dumps({"r": revision}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_history_cursor(cursor: str | None) -> int | None:
    """The revision a history page continues below."""
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        revision = value["r"]
        if type(revision) is int and 1 <= revision < 2**31:
            return revision
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, RecursionError):
        pass
    raise InvalidQuery({"cursor": ["Invalid cursor; use the `next` link of a history page."]})


def encode_feed_cursor(commit_seq: int, change_id: int) -> str:
    token = json.dumps({"c": commit_seq, "i": change_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_feed_cursor(cursor: str | None) -> list[int] | None:
    """The (commit_seq, id) position of a cursor. A cursor of the first
    feed, ordered by transaction id, is [txid, id]: it continues from its
    entry, which the feed now orders as it did then."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(value, dict) and value.keys() == {"c", "i"}:
            position = [value["c"], value["i"]]
        elif isinstance(value, list) and len(value) == 2:
            position = value
            if _is_position(value) and value != [0, 0]:
                seq = Change.objects.filter(pk=value[1]).values_list("commit_seq", flat=True)
                position = [next(iter(seq), None), value[1]]
        else:
            position = None
        if _is_position(position):
            return position
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        pass
    raise InvalidQuery({"after": ["Invalid cursor; use the `cursor` of an earlier answer."]})


def _is_position(value) -> bool:
    """Two whole numbers a bigint column can hold (bool is not one)."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(type(v) is int and 0 <= v <= MAX_ID for v in value)
    )


class ExportRenderer(BaseRenderer):
    """The export's formats. The file itself streams from PostgreSQL; what is
    rendered here is only DRF's own answers, such as OPTIONS metadata, as JSON."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"" if data is None else json.dumps(data).encode()


class CSVRenderer(ExportRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class JSONLinesRenderer(ExportRenderer):
    media_type = "application/x-ndjson"
    format = "jsonl"
    charset = None


class ExportTooLarge(exceptions.PermissionDenied):
    default_code = "export-too-large"


# Seconds a client refused for too many exports at once is asked to wait.
EXPORT_RETRY_AFTER = 10


class EventExportView(StrictQueryMixin, GenericAPIView):
    """Every event matching the list's filters, streamed as one file.

    Anonymous clients may export up to EXPORT_ANON_MAX_ROWS events; signed-in
    users, any number. Exports at once are capped per client and in all
    (ExportSlots), and each is bounded in time (BoundedExport)."""

    permission_classes = [AllowAny]
    renderer_classes = [CSVRenderer, JSONLinesRenderer]
    queryset = Event.objects.all()
    filterset_class = EventFilterSet
    pagination_class = None
    throttle_classes = SEARCH_THROTTLES

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            raise InvalidQuery({"format": ["Use csv or jsonl."]}) from None

    @extend_schema(
        operation_id="events_export",
        summary="Export events as CSV or JSON Lines",
        description="Every event that matches the filters (the same as the event list's), "
        "ordered by id, streamed as it is read: no page size, constant memory. One row per "
        "event: its fields, its place (`place_id`, `place_name`, `place_country`), and its "
        "`participants` and `evidence` as JSON arrays (JSON text in CSV cells; `context` "
        "there is joined by semicolons). A CSV cell that a spreadsheet would read as a "
        "formula (it begins with =, +, -, @, a tab or a carriage return) begins with a "
        "single quote. Choose the format with `format` or the Accept header.\n\n"
        "Anonymous clients may export at most 10,000 events (403 beyond: sign in or "
        "narrow the filters); signed-in users, any number. Exports running at once are "
        "limited per client and in all (429 with `Retry-After`).",
        filters=True,
        parameters=[
            OpenApiParameter(
                "format", str, enum=["csv", "jsonl"], description="csv (default) or jsonl."
            )
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (403, "application/problem+json"): OpenApiResponse(
                response={"$ref": "#/components/schemas/Problem"},
                description="An anonymous export of more events than anonymous clients may "
                "export: sign in, or narrow the filters.",
            ),
        },
    )
    def get(self, request):
        events = self.get_queryset()
        parts = self.id_queries(request, events)
        if request.user.is_authenticated:
            client, per_client = f"user-{request.user.pk}", settings.EXPORT_MAX_CONCURRENT_USER
        else:
            self.check_anonymous_size(request, parts)
            client = BaseThrottle().get_ident(request)  # the address, as the throttles count it
            per_client = settings.EXPORT_MAX_CONCURRENT_ANON
        slots = ExportSlots(client, per_client)
        refusal = slots.claim()
        if refusal is not None:
            raise exceptions.Throttled(wait=EXPORT_RETRY_AFTER, detail=refusal)
        try:
            chunks = self.chunks(request, parts)
            bounded = BoundedExport(
                chunks, client_socket=request.META.get("gunicorn.socket"), on_close=slots.release
            )
        except BaseException:
            slots.release()
            raise
        fmt = request.accepted_renderer.format
        response = StreamingHttpResponse(bounded, content_type=EXPORT_FORMATS[fmt])
        response["Content-Disposition"] = f'attachment; filename="events.{fmt}"'
        return response

    def id_queries(self, request, events) -> list[tuple[str, list]]:
        """The id queries whose union the filters select (none without
        filters). A search is two, as on the event list: matches by title and
        summary, and by evidence; each is a condition PostgreSQL can plan."""
        if not FilterBackend().filters_given(request, events, self):
            return []
        classes = [EventFilterSet]
        if request.query_params.get("q"):
            classes = [EventTextSearchFilterSet, EventEvidenceSearchFilterSet]
        parts = []
        for filterset_class in classes:
            self.filterset_class = filterset_class  # what filter_queryset() applies
            sql, params = self.filter_queryset(events).values("id").query.sql_with_params()
            parts.append((sql, list(params)))
        self.filterset_class = EventFilterSet
        return parts

    def check_anonymous_size(self, request, parts) -> None:
        limit = settings.EXPORT_ANON_MAX_ROWS
        if limit <= 0:
            raise ExportTooLarge("Sign in to export: send Authorization: Token <key>.")
        with search_time_limit(bool(request.query_params.get("q"))):
            matched = count_at_most(parts, limit + 1)
        if matched > limit:
            raise ExportTooLarge(
                f"Anonymous clients may export at most {limit:,} events, and these filters "
                f"match more. Sign in (Authorization: Token <key>), or narrow the filters "
                "(a date range, an actor, a type)."
            )

    def chunks(self, request, parts):
        fmt = request.accepted_renderer.format
        origin = request.build_absolute_uri("/")[:-1]
        ranges = export_slices(bool(parts))
        if ranges:
            queries = [
                export_query(None, (), fmt, origin, id_range=ids, header=i == 0)
                for i, ids in enumerate(ranges)
            ]
            return stream_in_parallel(queries)
        ids_sql, ids_params = None, []
        if parts:
            ids_sql = " UNION ".join(f"SELECT k.id FROM ({sql}) k" for sql, _ in parts)
            ids_params = [param for _, params in parts for param in params]
        return stream(export_query(ids_sql, ids_params, fmt, origin))
