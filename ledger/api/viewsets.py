"""The viewset of a revisioned resource: writes through services, ETags and
preconditions, idempotent creates, history and `as_of`."""

from django.core.exceptions import FieldDoesNotExist
from django.db import models, transaction
from django.http import Http404, HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from ledger.api import idempotency
from ledger.api.conditional import check_if_match, etag_matches, revision_etag
from ledger.api.errors import Gone, InvalidQuery, PreconditionFailed, PreconditionRequired
from ledger.api.filters import StrictQueryMixin
from ledger.api.inputs import date_from_iso, page_size_from
from ledger.api.pagination import decode_history_cursor, encode_history_cursor
from ledger.api.serializers import HistorySerializer
from ledger.context import record_api_context
from ledger.history import (
    Reconstruction,
    context_summary,
    has_history,
    revisions,
    with_representations,
)
from ledger.models import Revisioned

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


class RevisionedViewSet(StrictQueryMixin, viewsets.ModelViewSet):
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

    # Set by each subclass.
    queryset: models.QuerySet[Revisioned]
    serializer_class: type[serializers.BaseSerializer]
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
            queryset = queryset.model._default_manager.all()
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
        elsewhere = self.redirect_for(instance)
        if elsewhere is not None:
            return elsewhere
        headers = {"ETag": revision_etag(instance.revision)}
        if etag_matches(request.headers.get("If-None-Match", ""), instance.revision, weak=True):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(self.render(instance), headers=headers)

    def redirect_for(self, instance: models.Model) -> HttpResponse | None:
        """The answer for a record that lives at another address now (a merged
        one: ledger.api.merges), or None."""
        return None

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
        return idempotency.run_once(
            request, lambda: self.create_once(request), self.handle_exception
        )

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

    def lock_revision(self, instance: Revisioned, if_match: str) -> Revisioned:
        """Lock the row and check the client's revision: the check and the write
        that follows are one atomic step."""
        locked = type(instance)._default_manager.select_for_update().get(pk=instance.pk)
        if not etag_matches(if_match, locked.revision, weak=False):
            raise PreconditionFailed(locked.revision)
        return locked

    @staticmethod
    def omitted_field_defaults(serializer) -> dict:
        """For a full update (PUT): the model defaults of the scalar fields the
        body left out, so that they are reset rather than kept (except those the
        write serializer's Meta lists in `kept_when_omitted`, such as a slug)."""
        model = serializer.Meta.model
        kept = getattr(serializer.Meta, "kept_when_omitted", ())
        defaults = {}
        for field in serializer.fields.values():
            if (
                field.read_only
                or field.source in kept
                or isinstance(field, serializers.ListSerializer | serializers.ManyRelatedField)
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
