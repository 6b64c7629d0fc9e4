"""Views every deployment has: health checks, the API root and the change feed."""

import inspect
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.db import connection, models
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from ledger import registry, replicas
from ledger.api.errors import InvalidQuery, problem_response
from ledger.api.filters import StrictQueryMixin
from ledger.api.inputs import page_size_from
from ledger.api.pagination import decode_feed_cursor, encode_feed_cursor
from ledger.api.serializers import ApiRootSerializer, ChangeFeedSerializer
from ledger.models import Change


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive (no database access)."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest):
    """The database answers. With replicas, each one's state is reported
    (ok, lagging, down, with its lag): one out of rotation leaves the service
    ready, since the primary serves its reads."""
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
    body: dict = {"status": "ok", "database": "ok"}
    if settings.DATABASE_REPLICA_URLS:
        pool = replicas.pool()
        pool.check(force=True)
        body["replicas"] = {replica.alias: replica.report() for replica in pool.replicas}
    return JsonResponse(body)


@dataclass(frozen=True)
class Endpoint:
    """An endpoint the API root lists besides the resources: its name there, the
    name of its URL pattern, and what it is for."""

    name: str
    url_name: str
    description: str


def _summary(model: type[models.Model]) -> str:
    """The first sentence of a model's docstring: what one record is."""
    paragraph = " ".join((inspect.getdoc(model) or "").split("\n\n")[0].split())
    first, period, _rest = paragraph.partition(". ")
    return first + "." if period else paragraph


class ApiRootView(StrictQueryMixin, APIView):
    """`GET /api/v1/`: every resource with the URL of its list, from the registry,
    and the other endpoints the URL configuration names (`endpoints`)."""

    permission_classes = [AllowAny]
    http_method_names = ["get", "head", "options"]
    endpoints: tuple[Endpoint, ...] = ()

    @extend_schema(
        operation_id="root_retrieve",
        tags=["root"],
        summary="List the resources and endpoints",
        description="Where everything is: each resource with the absolute URL of its "
        "list and what one record is, then the change feed, document intake, the "
        "codebook, the export and the OpenAPI document with its viewers. Open to "
        "everyone; takes no query parameters.",
        responses={200: ApiRootSerializer},
    )
    def get(self, request):
        resources = [
            {
                "name": resource.name,
                "url": request.build_absolute_uri(reverse(f"{resource.basename}-list")),
                "description": _summary(resource.model),
            }
            for resource in registry.resources()
        ]
        endpoints = [
            {
                "name": endpoint.name,
                "url": request.build_absolute_uri(reverse(endpoint.url_name)),
                "description": endpoint.description,
            }
            for endpoint in self.endpoints
        ]
        return Response(ApiRootSerializer({"resources": resources, "endpoints": endpoints}).data)


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
                enum=registry.NAMES,
                description="Only these resources; repeat for several.",
            ),
            OpenApiParameter("page_size", int, description="1 to 1000 (default 100)."),
        ],
        responses={200: ChangeFeedSerializer},
    )
    def get(self, request):
        after = decode_feed_cursor(request.query_params.get("after"))
        resources = request.query_params.getlist("resource")
        unknown = sorted(set(resources) - set(registry.names()))
        if unknown:
            raise InvalidQuery({"resource": [f"Unknown resource {unknown[0]!r}."]})
        size = page_size_from(
            request.query_params.get("page_size"), self.page_size, self.max_page_size
        )
        # Ordered by commit (ledger.models.Change): an entry is visible only once
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
            # Every change listed has its commit_seq (the filter above).
            encode_feed_cursor(cast(int, rows[-1].commit_seq), rows[-1].pk)
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
                        f"{registry.get(change.resource).basename}-detail",
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
            model, serializer_class = (
                registry.get(resource).model,
                registry.get(resource).serializer,
            )
            queryset = (
                serializer_class.eager(model._default_manager.filter(pk__in=ids))
                if hasattr(serializer_class, "eager")
                else model._default_manager.filter(pk__in=ids)
            )
            for instance in queryset:
                found[(resource, instance.pk)] = serializer_class(instance, context=context).data
        return found
