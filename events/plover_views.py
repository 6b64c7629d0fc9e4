"""The PLOVER endpoints: the event export as PLOVER records, and their import
through the documents path (events/plover.py has the format both ways)."""

import pghistory
from django.db import transaction
from django.http import Http404, HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from events.export import slices as export_slices
from events.export import stream, stream_in_parallel
from events.plover import PloverReport, export_lines, export_query, import_plover
from events.serializers import (
    DocumentAdditionSerializer,
    DocumentMatchSerializer,
    DocumentSuggestionSerializer,
)
from events.views import (
    CanImportDocuments,
    EventExportView,
    ExportView,
    JSONLinesRenderer,
    _boolean,
)
from ledger.api import idempotency
from ledger.api.errors import PROBLEM_TYPE_BASE, InvalidQuery, problem_response
from ledger.api.filters import StrictQueryMixin
from ledger.api.parsers import StrictJSONParser
from ledger.api.serializers import StrictInputMixin
from ledger.context import record_api_context


class PloverExportView(EventExportView):
    """Every event matching the list's filters, as PLOVER records (JSON Lines),
    within the same bounds as the export (EventExportView)."""

    renderer_classes = [JSONLinesRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super(ExportView, self).perform_content_negotiation(request, force)
        except Http404:
            raise InvalidQuery({"format": ["PLOVER records are JSON Lines: use jsonl."]}) from None

    @extend_schema(
        operation_id="events_export_plover",
        summary="Export events as PLOVER records (JSON Lines)",
        description="Every event that matches the filters (the same as the event list's), "
        "ordered by id, one PLOVER record a line, streamed as it is read: no page size, "
        "constant memory. A record has the fields of the PLOVER manual's data chapter: "
        "`id` (stable: the first 12 hex digits of its document's sha256 and the event's "
        "key in that document), `date`, `enddate`, `actor`, `recipient` (entity objects "
        "with `code`, `sector`, `identifier_id` (Wikidata), `identifier_text`), `event`, "
        "`quad_code`, `mode`, `context`, `event_loc`, `event_text`, `text_info` (character "
        "offsets), `text` (the document) and `cite_info` (with `codebook`, the vocabulary "
        "version), and the ledger's own: `date_precision`, `mediator`, `status`, `title`, "
        "`summary`, `other_evidence`; docs/plover.md describes each. The same file can be "
        "imported with POST /api/v1/documents/plover/.\n\n"
        "Anonymous clients may export at most 10,000 events (403 beyond); exports running "
        "at once are limited per client and in all (429 with `Retry-After`).",
        filters=True,
        parameters=[OpenApiParameter("format", str, enum=["jsonl"], description="jsonl.")],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (403, "application/problem+json"): OpenApiResponse(
                response={"$ref": "#/components/schemas/Problem"},
                description="An anonymous export of more events than anonymous clients may "
                "export: sign in, or narrow the filters.",
            ),
        },
    )
    def get(self, request):
        response = super().get(request)
        response["Content-Disposition"] = 'attachment; filename="events.plover.jsonl"'
        return response

    def chunks(self, request, parts):
        ranges = export_slices(bool(parts))
        if ranges:
            queries = [export_query(None, (), id_range=ids) for ids in ranges]
            return stream_in_parallel(queries, export_lines)
        ids_sql, ids_params = None, []
        if parts:
            ids_sql = " UNION ".join(f"SELECT k.id FROM ({sql}) k" for sql, _ in parts)
            ids_params = [param for _, params in parts for param in params]
        return stream(export_query(ids_sql, ids_params), export_lines)


class PloverParser(BaseParser):
    """A body of PLOVER records, one JSON object a line, as text:
    events.plover reads it line by line, to name each bad record by line."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return stream.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(f"The body is not UTF-8: {exc}") from None


class PloverImportWriteSerializer(StrictInputMixin, serializers.Serializer):
    """PLOVER records as a JSON body (the same records as JSON Lines)."""

    records = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=True,
        help_text="PLOVER records, each as one line of the PLOVER export holds it.",
    )


class PloverLineProblemSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="The record's line in the body, from 1.")
    pointer = serializers.CharField(
        help_text="JSON pointer into the body read as the list of its lines: /<line - 1>/<field>."
    )
    detail = serializers.CharField()
    code = serializers.CharField(required=False)
    hint = serializers.CharField(required=False)


class PloverDocumentReportSerializer(serializers.Serializer):
    citation = serializers.CharField(help_text="sha256:<digest of the document's text>.")
    lines = serializers.ListField(
        child=serializers.IntegerField(), help_text="The lines of its records."
    )
    source = serializers.URLField(
        allow_null=True, help_text="The stored source (null on a dry run or with problems)."
    )
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="Records created (or to be), per section."
    )
    matched = DocumentMatchSerializer(many=True)
    additions = DocumentAdditionSerializer(many=True)
    suggestions = DocumentSuggestionSerializer(many=True)


class PloverImportReportSerializer(serializers.Serializer):
    """What importing PLOVER records did, or (dry run) would do."""

    dry_run = serializers.BooleanField()
    valid = serializers.BooleanField(help_text="Whether every record can be stored as it is.")
    documents = PloverDocumentReportSerializer(
        many=True, help_text="One per document (records with the same text), in body order."
    )
    ignored = PloverLineProblemSerializer(
        many=True, help_text="What the records hold that the import leaves out, by line."
    )
    problems = PloverLineProblemSerializer(many=True)


class PloverImportView(StrictQueryMixin, APIView):
    """PLOVER records stored as documents with their events, in one
    transaction; `?dry_run=true` checks them all and stores nothing."""

    permission_classes = [CanImportDocuments]
    parser_classes = [StrictJSONParser, PloverParser]
    http_method_names = ["post", "options"]
    query_parameters = {"post": ("dry_run",)}

    @extend_schema(
        operation_id="documents_plover_create",
        summary="Import events from PLOVER records (JSON Lines)",
        description="The body is PLOVER records as the PLOVER export writes them "
        "(docs/plover.md): JSON Lines (`Content-Type: application/x-ndjson`, one record a "
        'line), or JSON (`{"records": [...]}`). Records with the same `text` are one '
        "document: each becomes an annotation (its actors and places declared from the "
        "entity and location objects, each event citing the passages of its `text_info`) "
        "and is stored as POST /api/v1/documents/ stores one, so actors and places are "
        "found among those stored and history records the writes (`via: import`). Every "
        "record is checked and every bad one reported at once, by line (an unknown event, "
        "actor or sector code, an offset outside the text, ...); with any, nothing is "
        "stored (400). With `dry_run=true` nothing is stored either, and the report says "
        "what would be (200). A text already stored is refused.",
        parameters=[
            OpenApiParameter(
                "dry_run",
                bool,
                description="true: check everything, store nothing, answer with the report.",
            )
        ],
        # JSON Lines (application/x-ndjson) is accepted too, but not declared: the
        # generated SDKs speak JSON.
        request={"application/json": PloverImportWriteSerializer},
        responses={201: PloverImportReportSerializer, 200: PloverImportReportSerializer},
    )
    def post(self, request):
        dry_run = _boolean(request.query_params.get("dry_run", "false"), "dry_run")
        return idempotency.run_once(
            request, lambda: self.store(request, dry_run=dry_run), self.handle_exception
        )

    def store(self, request, *, dry_run: bool) -> HttpResponse:
        body = request.data
        if request.content_type.startswith(PloverParser.media_type):
            body = body if isinstance(body, str) else ""  # DRF parses no body as no data
        else:
            serializer = PloverImportWriteSerializer(data=body)
            serializer.is_valid(raise_exception=True)
            body = serializer.validated_data["records"]
        with transaction.atomic():
            record_api_context(request)
            pghistory.context(via="import", format="plover")
            report = import_plover(body, dry_run=dry_run)
        data = PloverImportReportSerializer(self.report(request, report)).data
        if report.problems and not dry_run:
            return problem_response(
                400,
                "Invalid request",
                f"{len({p.line for p in report.problems})} record(s) have problems; nothing "
                "was stored. Send them with ?dry_run=true to check without storing anything.",
                type_=PROBLEM_TYPE_BASE + "validation-error",
                instance=request.path,
                errors=data["problems"],
            )
        response = Response(data)
        if not dry_run:
            response.status_code = status.HTTP_201_CREATED
        return response

    def report(self, request, report: PloverReport) -> dict:
        documents = []
        for document, result in report.documents:
            source = None
            if result.source is not None and result.created:
                source = request.build_absolute_uri(
                    reverse("source-detail", kwargs={"pk": result.source.pk})
                )
            documents.append(
                {
                    "citation": f"sha256:{document.digest}",
                    "lines": document.event_lines,
                    "source": source,
                    "counts": result.counts,
                    "matched": result.matched,
                    "additions": result.additions,
                    "suggestions": result.suggestions,
                }
            )
        return {
            "dry_run": report.dry_run,
            "valid": not report.problems,
            "documents": documents,
            "ignored": report.ignored,
            "problems": [problem.as_dict() for problem in report.problems],
        }
