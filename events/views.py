"""API views of places, events and statements, the exports (of events, and
of statements, actors and affiliations), the documents endpoint, and the
mention suggestions of a source."""

import contextlib
import json

import pghistory
import psycopg.errors
from django.conf import settings
from django.db import OperationalError, transaction
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from actors.filters import ActorFilterSet, AffiliationFilterSet
from actors.models import Actor, Affiliation
from events.documents import PRODUCED, import_document
from events.export import (
    ACTOR_EXPORT,
    AFFILIATION_EXPORT,
    STATEMENT_EXPORT,
    BoundedExport,
    ExportSlots,
    TableExport,
    count_at_most,
    dyadic_query,
    export_query,
    stream,
    stream_in_parallel,
)
from events.export import EXTENSIONS as EXPORT_EXTENSIONS
from events.export import FORMATS as EXPORT_FORMATS
from events.export import slices as export_slices
from events.filters import (
    EventEvidenceSearchFilterSet,
    EventFilterSet,
    EventTextSearchFilterSet,
    PlaceFilterSet,
    StatementFilterSet,
)
from events.mentions import mentions
from events.models import Event, Place, Statement
from events.representations import EventShaper, fetch_rows, json_response, plain
from events.search import SEARCH_RANK_CANDIDATES, rank_position, ranked_rows, snippet_query
from events.serializers import (
    DocumentReapplySerializer,
    DocumentReportSerializer,
    DocumentSerializer,
    DocumentWriteSerializer,
    EventListItemSerializer,
    EventSerializer,
    EventWriteSerializer,
    MentionsSerializer,
    PlaceSerializer,
    PlaceWriteSerializer,
    StatementSerializer,
    StatementWriteSerializer,
)
from events.services import (
    event_create,
    event_delete,
    event_update,
    place_create,
    place_delete,
    place_merge,
    place_unmerge,
    place_update,
    statement_create,
    statement_delete,
    statement_update,
)
from ledger.api import idempotency
from ledger.api.conditional import check_if_match, etag_matches, revision_etag
from ledger.api.errors import (
    PROBLEM_TYPE_BASE,
    Conflict,
    InvalidQuery,
    PreconditionFailed,
    PreconditionRequired,
    ServiceUnavailable,
    problem_response,
)
from ledger.api.filters import FilterBackend, StrictQueryMixin
from ledger.api.merges import MergeableViewSet, merge_docs
from ledger.api.parsers import StrictJSONParser, YAMLParser
from ledger.api.throttling import SearchThrottle
from ledger.api.viewsets import (
    DATE_ORDERINGS,
    NAME_ORDERINGS,
    RevisionedViewSet,
    crud_docs,
)
from ledger.context import record_api_context
from ledger.routing import reading as connection  # the database this request reads
from sources.models import Source

# The views that search (`q`): counted by the search throttle besides the others.
SEARCH_THROTTLES = [*api_settings.DEFAULT_THROTTLE_CLASSES, SearchThrottle]


class SearchTimeout(ServiceUnavailable):
    default_code = "search-timeout"


@contextlib.contextmanager
def search_time_limit(searching: bool, *, serial: bool = False):
    """Run the block's queries, when `searching`, in a transaction whose
    statements may take SEARCH_TIMEOUT_MS (rather than the general statement
    timeout): a search that runs longer is answered 503, asking to narrow it.
    `serial`: without parallel workers, which take longer to start than the
    few thousand rows a ranked page reads (about 70 ms against 5 on the
    benchmark)."""
    settings_sql = []
    if searching and settings.SEARCH_TIMEOUT_MS > 0:
        settings_sql.append(f"statement_timeout = {int(settings.SEARCH_TIMEOUT_MS)}")
    if serial:
        settings_sql.append("max_parallel_workers_per_gather = 0")
    if not settings_sql:
        yield
        return
    nested = connection.in_atomic_block
    try:
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                # Without parameters: the settings in one round trip.
                cursor.execute("; ".join(f"SET LOCAL {sql}" for sql in settings_sql))
            yield
            if nested:  # SET LOCAL outlives a savepoint: the enclosing transaction's back
                with connection.cursor() as cursor:
                    cursor.execute(
                        "; ".join(
                            f"SET LOCAL {sql.split(' =')[0]} = DEFAULT" for sql in settings_sql
                        )
                    )
    except OperationalError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
            raise
        raise SearchTimeout(
            f"The search took longer than {settings.SEARCH_TIMEOUT_MS} ms and was stopped; "
            "narrow it: rarer or fewer words, fewer ORs, or other filters (a date range, an "
            "actor, a type)."
        ) from None


@extend_schema_view(
    **crud_docs(
        "place",
        "places",
        "A named location, with optional coordinates.",
        PlaceSerializer,
        PlaceWriteSerializer,
    ),
    **merge_docs("place", "places", "the events that happened at this place"),
)
class PlaceViewSet(MergeableViewSet):
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

    def perform_service_merge(self, record, into):
        return place_merge(place=record, into=into)

    def perform_service_unmerge(self, record):
        return place_unmerge(place=record)


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
class EventViewSet(RevisionedViewSet):
    queryset = EventSerializer.eager(Event.objects.all())
    serializer_class = EventSerializer
    write_serializer_class = EventWriteSerializer
    filterset_class = EventFilterSet
    throttle_classes = SEARCH_THROTTLES
    orderings = {**DATE_ORDERINGS, "relevance": ("-rank", "-id")}
    default_ordering = "-date"
    ordering_description = (
        "date: by the earliest known date, then id; -date: newest first; id, -id: by id; "
        f"relevance (only with q): best match first, among the {SEARCH_RANK_CANDIDATES} newest "
        "matches by title or summary and as many by evidence."
    )

    # The hot read paths: rows shaped straight into the representation
    # (events/representations.py), one query per page or record.

    @extend_schema(responses=EventListItemSerializer(many=True))
    def list(self, request, *args, **kwargs):
        paginator = self.paginator
        text = request.query_params.get("q", "")
        if request.query_params.get("ordering") == "relevance":
            return self.ranked_list(request, text)
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
        snippets = snippet_query(text) if searching else {}
        with search_time_limit(searching):
            rows = fetch_rows(
                request, f"e.id IN ({union})", params, order_by, paginator.size + 1, **snippets
            )
        rows = paginator.finish(rows, getattr)  # rows are read by column name
        return self.list_response(request, rows, snippets=bool(snippets))

    def ranked_list(self, request, text):
        """`ordering=relevance`: a page of the best matches of `q` (events/search.py)."""
        if not text.strip():
            raise InvalidQuery(
                {"ordering": ["relevance orders the matches of a search: give q as well."]}
            )
        paginator = self.paginator
        raw = paginator.start(request, self)
        position = None if raw is None else rank_position(raw)
        if raw is not None and position is None:
            raise paginator.invalid_cursor()
        candidates = []
        for filterset_class in (EventTextSearchFilterSet, EventEvidenceSearchFilterSet):
            self.filterset_class = filterset_class  # what filter_queryset() applies
            events = self.filter_queryset(Event.objects.all()).order_by("-date_sort", "-id")
            candidates.append(events.values("id")[:SEARCH_RANK_CANDIDATES].query.sql_with_params())
        self.filterset_class = EventFilterSet
        with search_time_limit(True, serial=True):
            rows = ranked_rows(request, text, candidates, position, paginator.size)
        # rows carry (rank, snippet) as their extra columns
        rows = paginator.finish(rows, lambda row, field: row.id if field == "id" else row.extra[0])
        return self.list_response(request, rows, snippets=True, snippet_column=1)

    def list_response(self, request, rows, *, snippets: bool, snippet_column: int = 0):
        """The page of `rows`, each with its snippet (the row's extra column
        `snippet_column`) when `snippets` (a search)."""
        shape = EventShaper(request)
        results = [shape(row) for row in rows]
        if snippets:
            for row, result in zip(rows, results, strict=True):
                result["snippet"] = row.extra[snippet_column]
        data = {"next": self.paginator.get_next_link(), "results": results}
        return json_response(request, data) or Response(plain(data))

    def retrieve(self, request, *args, **kwargs):
        as_of = "as_of" in request.query_params
        rows = [] if as_of else fetch_rows(request, "e.id = %s", [kwargs["pk"]])
        if not rows:
            return super().retrieve(request, *args, **kwargs)  # as_of, 404 and 410
        headers = {"ETag": revision_etag(rows[0].revision)}
        if etag_matches(request.headers.get("If-None-Match", ""), rows[0].revision, weak=True):
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
class StatementViewSet(RevisionedViewSet):
    queryset = StatementSerializer.eager(Statement.objects.all())
    serializer_class = StatementSerializer
    write_serializer_class = StatementWriteSerializer
    filterset_class = StatementFilterSet
    throttle_classes = SEARCH_THROTTLES
    orderings = DATE_ORDERINGS
    default_ordering = "-date"
    ordering_description = (
        "date: by the earliest known date, then id; -date: newest first; id, -id: by id."
    )

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


class DyadicCSVRenderer(CSVRenderer):
    """The dyadic CSV of events: one row per pair of an event's sides."""

    format = "dyadic"


def _export_parameters(formats: list[str]) -> list[OpenApiParameter]:
    return [
        OpenApiParameter(
            "format",
            str,
            enum=formats,
            description=f"{formats[0]} (default) or {' or '.join(formats[1:])}.",
        )
    ]


def _too_large_response(noun: str) -> OpenApiResponse:
    return OpenApiResponse(
        response={"$ref": "#/components/schemas/Problem"},
        description=f"An anonymous export of more {noun} than anonymous clients may export: "
        "sign in, or narrow the filters.",
    )


EXPORT_LIMITS_TEXT = (
    "Anonymous clients may export at most 10,000 {noun} (403 beyond: sign in or narrow the "
    "filters); signed-in users, any number. Exports running at once are limited per client "
    "and in all (429 with `Retry-After`)."
)
FORMULA_TEXT = (
    "A CSV cell that a spreadsheet would read as a formula (it begins with =, +, -, @, a tab "
    "or a carriage return) begins with a single quote."
)


class ExportView(StrictQueryMixin, GenericAPIView):
    """Every record matching a list's filters, streamed as one file.

    Anonymous clients may export up to EXPORT_ANON_MAX_ROWS records; signed-in
    users, any number. Exports at once are capped per client and in all
    (ExportSlots), and each is bounded in time (BoundedExport). Subclasses say
    what is exported (`noun`, `table`, `queryset`, `filterset_class`) and
    make the file (`chunks`)."""

    permission_classes = [AllowAny]
    renderer_classes = [CSVRenderer, JSONLinesRenderer]
    pagination_class = None
    throttle_classes = SEARCH_THROTTLES
    noun = "records"
    table = ""

    def perform_content_negotiation(self, request, force=False):
        formats = [renderer.format for renderer in self.renderer_classes]
        # An empty `format` is no choice (DRF would fall back to Accept): refused too.
        if request.query_params.get("format", None) == "":
            raise InvalidQuery({"format": [f"Use {' or '.join(formats)}."]})
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            raise InvalidQuery({"format": [f"Use {' or '.join(formats)}."]}) from None

    def get(self, request):
        parts = self.id_queries(request, self.get_queryset())
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
        name = f"{self.noun}.{EXPORT_EXTENSIONS.get(fmt, fmt)}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def id_queries(self, request, queryset) -> list[tuple[str, list]]:
        """The id queries whose union is exported: the list's, filtered."""
        sql, params = self.filter_queryset(queryset).values("id").query.sql_with_params()
        return [(sql, list(params))]

    def check_anonymous_size(self, request, parts) -> None:
        limit = settings.EXPORT_ANON_MAX_ROWS
        if limit <= 0:
            raise ExportTooLarge("Sign in to export: send Authorization: Token <key>.")
        with search_time_limit(bool(request.query_params.get("q"))):
            matched = count_at_most(parts, limit + 1, self.table)
        if matched > limit:
            raise ExportTooLarge(
                f"Anonymous clients may export at most {limit:,} {self.noun}, and these "
                "filters match more. Sign in (Authorization: Token <key>), or narrow the "
                "filters."
            )

    def chunks(self, request, parts):
        raise NotImplementedError

    @staticmethod
    def union(parts) -> tuple[str | None, list]:
        """One id query of `parts` (None, every row, when there are none)."""
        if not parts:
            return None, []
        ids_sql = " UNION ".join(f"SELECT k.id FROM ({sql}) k" for sql, _ in parts)
        return ids_sql, [param for _, params in parts for param in params]


class EventExportView(ExportView):
    """Every event matching the list's filters, as CSV, JSON Lines or the
    dyadic CSV (one row per pair of sides)."""

    renderer_classes = [CSVRenderer, JSONLinesRenderer, DyadicCSVRenderer]
    queryset = Event.objects.all()
    filterset_class = EventFilterSet
    noun = "events"
    table = "events_event"

    @extend_schema(
        operation_id="events_export",
        summary="Export events as CSV, JSON Lines or dyadic CSV",
        description="Every event that matches the filters (the same as the event list's), "
        "ordered by id, streamed as it is read: no page size, constant memory. One row per "
        "event: its fields, its place (`place_id`, `place_name`, `place_country`), and its "
        "`participants` and `evidence` as JSON arrays (JSON text in CSV cells; `context` "
        "there is joined by semicolons). With `format=dyadic`, a CSV with one row per "
        "event per pair of its sides, as ACLED's dyadic export: `actor1_*` an initiator, "
        "`actor2_*` a target, one row per (initiator, target) pair (docs/api.md lists the "
        f"rule and the columns). {FORMULA_TEXT} Choose the format with `format` or the "
        "Accept header.\n\n" + EXPORT_LIMITS_TEXT.format(noun="events"),
        filters=True,
        parameters=_export_parameters(["csv", "jsonl", "dyadic"]),
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (403, "application/problem+json"): _too_large_response("events"),
        },
    )
    def get(self, request):
        return super().get(request)

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

    def chunks(self, request, parts):
        fmt = request.accepted_renderer.format
        origin = request.build_absolute_uri("/")[:-1]

        def query(ids_sql, ids_params, **slice_):
            if fmt == "dyadic":
                return dyadic_query(ids_sql, ids_params, origin, **slice_)
            return export_query(ids_sql, ids_params, fmt, origin, **slice_)

        ranges = export_slices(bool(parts))
        if ranges:
            return stream_in_parallel(
                [query(None, (), id_range=ids, header=i == 0) for i, ids in enumerate(ranges)]
            )
        return stream(query(*self.union(parts)))


class TableExportView(ExportView):
    """The export of a resource other than events, as its TableExport says."""

    export: TableExport

    def chunks(self, request, parts):
        origin = request.build_absolute_uri("/")[:-1]
        fmt = request.accepted_renderer.format
        return stream(self.export.query(*self.union(parts), fmt, origin))


def _table_export_schema(export: TableExport, record: str):
    return extend_schema(
        operation_id=f"{export.noun}_export",
        summary=f"Export {export.noun} as CSV or JSON Lines",
        description=f"Every {record} that matches the filters (the same as the {record} "
        "list's), ordered by id, streamed as it is read: no page size, constant memory. One "
        f"row per {record}, with the columns docs/api.md lists; lists (of actors, events, "
        "evidence, aliases, identifiers) are JSON arrays, JSON text in CSV cells. "
        f"{FORMULA_TEXT}\n\n" + EXPORT_LIMITS_TEXT.format(noun=export.noun),
        filters=True,
        parameters=_export_parameters(["csv", "jsonl"]),
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (403, "application/problem+json"): _too_large_response(export.noun),
        },
    )


class StatementExportView(TableExportView):
    queryset = Statement.objects.all()
    filterset_class = StatementFilterSet
    export = STATEMENT_EXPORT
    noun, table = export.noun, export.table

    @_table_export_schema(STATEMENT_EXPORT, "statement")
    def get(self, request):
        return super().get(request)


class ActorExportView(TableExportView):
    # Merged actors are left out, as from the list (MergeableViewSet).
    queryset = Actor.objects.filter(merged_into__isnull=True)
    filterset_class = ActorFilterSet
    export = ACTOR_EXPORT
    noun, table = export.noun, export.table

    @_table_export_schema(ACTOR_EXPORT, "actor")
    def get(self, request):
        return super().get(request)


class AffiliationExportView(TableExportView):
    queryset = Affiliation.objects.all()
    filterset_class = AffiliationFilterSet
    export = AFFILIATION_EXPORT
    noun, table = export.noun, export.table

    @_table_export_schema(AFFILIATION_EXPORT, "affiliation")
    def get(self, request):
        return super().get(request)


class CanImportDocuments(BasePermission):
    """Storing a document creates sources, evidence, actors, places, events,
    statements and affiliations, and may add to stored actors and places: it
    takes a curator's permissions."""

    required = (
        "sources.add_source",
        "sources.add_evidence",
        "actors.add_actor",
        "actors.change_actor",
        "actors.add_affiliation",
        "events.add_place",
        "events.change_place",
        "events.add_event",
        "events.add_statement",
    )

    def has_permission(self, request, view) -> bool:
        return bool(request.user.is_authenticated and request.user.has_perms(self.required))


class DocumentView(StrictQueryMixin, APIView):
    """A source document and everything its annotation describes, stored in one
    transaction; `?dry_run=true` checks it all and stores nothing."""

    permission_classes = [CanImportDocuments]
    parser_classes = [StrictJSONParser, YAMLParser]
    http_method_names = ["post", "options"]
    query_parameters = {"post": ("dry_run",)}

    @extend_schema(
        operation_id="documents_create",
        summary="Store a document with its annotation",
        description="One request carries a source's text and its annotation (JSON; the "
        "same body as YAML is accepted with `Content-Type: application/yaml`). Every item "
        "is checked and every problem reported at once, each with a JSON pointer into "
        "the body and, where the service can tell, a hint: the passage a quote nearly matches, the "
        "values a field accepts. Actors and places are found among those stored by "
        "identifier, slug, then exact name or alias (case and diacritics aside); what "
        "the annotation adds to them (aliases, identifiers, a missing description) is "
        "added and reported, a different value for what they hold is a problem naming "
        "both records, and a near match is only suggested. With problems nothing is "
        "stored (400); with `dry_run=true` nothing is stored either, and the report "
        "says what would be (200). History records the writes as `via: import`; the "
        "change feed has one entry per record.",
        parameters=[
            OpenApiParameter(
                "dry_run",
                bool,
                description="true: check everything, store nothing, answer with the report.",
            )
        ],
        # YAML is accepted too, but not declared: the generated SDKs speak JSON.
        request={"application/json": DocumentWriteSerializer},
        responses={201: DocumentReportSerializer, 200: DocumentReportSerializer},
    )
    def post(self, request):
        dry_run = _boolean(request.query_params.get("dry_run", "false"), "dry_run")
        return idempotency.run_once(
            request, lambda: self.store(request, dry_run=dry_run), self.handle_exception
        )

    def store(self, request, *, dry_run: bool) -> HttpResponse:
        serializer = DocumentWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # Before the import writes anything: the names index is then the shared one.
        found = mentions(data["text"]) if dry_run else None
        with transaction.atomic():
            record_api_context(request)
            pghistory.context(via="import")
            report = import_document(
                text=data["text"],
                annotation=data["annotation"],
                published_on=data.get("published_on"),
                dry_run=dry_run,
                root="/annotation",
            )
        for problem in report.problems:
            if problem.code == "unique" and problem.pointer == "/text":
                twin = Source.objects.with_text(data["text"]).values_list("pk", flat=True).first()
                where = (
                    reverse("document-detail", kwargs={"pk": twin})
                    if twin is not None
                    else "/api/v1/documents/<source id>/"
                )
                problem.hint = (
                    f"To apply a corrected annotation to the stored document, PUT it to {where} "
                    "with If-Match."
                )
        response = _report_response(request, report, dry_run=dry_run, mentions=found)
        if report.created and report.source is not None:
            response.status_code = status.HTTP_201_CREATED
            response["Location"] = response.data["source"]
        return response


def _report_response(request, report, *, dry_run: bool, mentions=None) -> HttpResponse:
    """A document's report: 200 (dry run, or applied again), or a 400 problem
    listing every problem with nothing stored."""
    source = None
    if report.source is not None and (report.created or report.reapplied):
        source = request.build_absolute_uri(
            reverse("source-detail", kwargs={"pk": report.source.pk})
        )
    body = DocumentReportSerializer(
        {
            "dry_run": dry_run,
            "valid": not report.problems,
            "source": source,
            "counts": report.counts,
            "matched": report.matched,
            "additions": report.additions,
            "suggestions": report.suggestions,
            "updated": report.updated,
            "deleted": report.deleted,
            "problems": [problem.as_dict() for problem in report.problems],
            "mentions": mentions,
        }
    ).data
    if report.problems and not dry_run:
        return problem_response(
            400,
            "Invalid request",
            f"The document has {len(report.problems)} problem(s); nothing was stored. "
            "Send it with ?dry_run=true to check it without storing anything.",
            type_=PROBLEM_TYPE_BASE + "validation-error",
            instance=request.path,
            errors=body["problems"],
            suggestions=body["suggestions"],
        )
    return Response(body)


class CanReapplyDocuments(CanImportDocuments):
    """Applying a corrected annotation may also change and delete the
    records the document produced; reading a document is open as sources are."""

    required = (
        *CanImportDocuments.required,
        "sources.change_source",
        "sources.delete_evidence",
        "actors.change_affiliation",
        "actors.delete_affiliation",
        "events.change_event",
        "events.delete_event",
        "events.change_statement",
        "events.delete_statement",
    )

    def has_permission(self, request, view) -> bool:
        return request.method in ("GET", "HEAD", "OPTIONS") or super().has_permission(request, view)


class DocumentDetailView(StrictQueryMixin, APIView):
    """A stored document: the annotation it was last loaded with and the
    records that produced; PUT applies a corrected annotation."""

    permission_classes = [CanReapplyDocuments]
    parser_classes = [StrictJSONParser, YAMLParser]
    http_method_names = ["get", "head", "put", "options"]
    query_parameters = {"put": ("dry_run",)}

    def document(self, pk: int, *, lock: bool = False) -> Source:
        sources = Source.objects.select_for_update() if lock else Source.objects.all()
        source = sources.filter(pk=pk).first()
        if source is None:
            raise Http404("No source has this id.")
        return source

    @extend_schema(
        operation_id="documents_retrieve",
        summary="A stored document's annotation and the records it produced",
        description="The annotation the document was last loaded with (through this "
        "endpoint or `manage.py seed`), its digest, and the ids of the affiliations, events "
        "and statements it produced. The ETag is the source's revision, which a new "
        "annotation moves on: send it in `If-Match` to PUT a corrected one. A source stored "
        "on its own (`POST /sources/`) has no annotation: `annotation` is null.",
        responses={200: DocumentSerializer},
    )
    def get(self, request, pk: int):
        source = self.document(pk)
        annotation = source.annotation or {}
        body = DocumentSerializer(
            {
                "source": request.build_absolute_uri(
                    reverse("source-detail", kwargs={"pk": source.pk})
                ),
                "annotation": annotation.get("content"),
                "annotation_sha256": annotation.get("sha256", ""),
                "records": {
                    section: sorted((annotation.get("records") or {}).get(section, {}).values())
                    for section in PRODUCED
                },
            }
        ).data
        return Response(body, headers={"ETag": revision_etag(source.revision)})

    @extend_schema(
        operation_id="documents_update",
        summary="Apply a corrected annotation to a stored document",
        description="The annotation is applied again to the stored text, with the same checks "
        "and report as `POST /documents/`. The records the document's previous annotation "
        "produced are matched to the items: an event, statement or affiliation by its `key`, "
        "or without one, an event by the passages it cites, a statement by its speaker and "
        "passages, an affiliation by member, organisation, role and start. Matched records "
        "are updated in place (their ids and history kept), new items are created, and "
        "records no item describes any more are deleted (or, where they cite other sources "
        "too, lose this document's evidence). Actors and places follow the same rules as "
        "on the first load: found, added to, or in conflict; they are never deleted. An "
        "unchanged annotation changes nothing. Every write is in history with `via: import`, "
        "`source_id` and the annotation's digest. Needs `If-Match` with the document's ETag "
        "(the source's revision).",
        parameters=[
            OpenApiParameter(
                "dry_run",
                bool,
                description="true: check everything, change nothing, answer with the report.",
            ),
            OpenApiParameter(
                "If-Match",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="The document's ETag, from GET /documents/{id}/.",
            ),
        ],
        request={"application/json": DocumentReapplySerializer},
        responses={200: DocumentReportSerializer},
    )
    def put(self, request, pk: int):
        dry_run = _boolean(request.query_params.get("dry_run", "false"), "dry_run")
        return idempotency.run_once(
            request, lambda: self.reapply(request, pk, dry_run=dry_run), self.handle_exception
        )

    def reapply(self, request, pk: int, *, dry_run: bool) -> HttpResponse:
        if_match = request.headers.get("If-Match", "").strip()
        if not if_match:
            raise PreconditionRequired()
        check_if_match(if_match)
        serializer = DocumentReapplySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            source = self.document(pk, lock=True)
            if not etag_matches(if_match, source.revision, weak=False):
                raise PreconditionFailed(source.revision)
            if "text" in data and data["text"] != source.text:
                message = "A stored document's text never changes: send it as it is, or not at all."
                raise exceptions.ValidationError({"text": [message]})
            if source.annotation is None and source.evidence.exists():
                raise Conflict(
                    "Records cite this source but were not made from an annotation of it, "
                    "so a new annotation cannot be matched to them. Correct them through "
                    "their own endpoints."
                )
            found = mentions(source.text) if dry_run else None
            record_api_context(request)
            pghistory.context(via="import")
            report = import_document(
                text=source.text,
                annotation=data["annotation"],
                published_on=data.get("published_on"),
                dry_run=dry_run,
                root="/annotation",
                stored=source,
            )
        response = _report_response(request, report, dry_run=dry_run, mentions=found)
        if not report.problems and not dry_run:
            source.refresh_from_db(fields=["revision"])
            response["ETag"] = revision_etag(source.revision)
        return response


def _boolean(raw: str, name: str) -> bool:
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise InvalidQuery({name: ["Use true or false."]})


MENTIONS_EXAMPLE = {
    "names": [
        {
            "start": 0,
            "end": 7,
            "text": "Armenia",
            "matches": [
                {"kind": "actor", "id": 1, "slug": "armenia", "name": "Armenia"},
                {"kind": "place", "id": 1, "slug": "armenia", "name": "Armenia"},
            ],
        }
    ],
    "dates": [
        {
            "start": 120,
            "end": 133,
            "text": "November 2023",
            "date_start": "2023-11-01",
            "date_end": "2023-11-30",
            "date_precision": "month",
        }
    ],
    "quotes": [{"start": 1385, "end": 1394, "text": "difficult"}],
}


class SourceMentionsView(StrictQueryMixin, GenericAPIView):
    """The spans of a source's text that name stored actors and places, the
    dates it states and the passages it quotes (events.mentions). In the
    events app: only it sees both actors and places."""

    queryset = Source.objects.all()
    serializer_class = MentionsSerializer
    filter_backends: list = []
    pagination_class = None
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        operation_id="sources_mentions_retrieve",
        summary="Suggest what a source's text mentions",
        description="For annotators: every span of the source's text that is the name or an "
        "alias of a stored actor or place (case, diacritics and spacing aside; whole words "
        "only; of overlapping spans the leftmost, then the longest), with every record it may "
        'name; the dates the text states ("9 November 2023", "November 9, 2023", '
        '"2023-11-09", "November 2023", "in 1991"), each with the days it covers '
        "and its precision; and the passages in double quotes, without the marks. Offsets "
        "count Unicode code points, the end exclusive, as evidence offsets do: "
        "`text[start:end]` is the span. Suggestions only: nothing is stored.",
        responses={200: MentionsSerializer},
        examples=[OpenApiExample("Mentions", value=MENTIONS_EXAMPLE, response_only=True)],
    )
    def get(self, request, pk: int):
        source = self.get_object()
        return Response(MentionsSerializer(mentions(source.text)).data)
