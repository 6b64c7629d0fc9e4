"""API views of sources."""

from drf_spectacular.utils import (
    extend_schema_view,
)

from ledger.api.viewsets import (
    ID_ORDERINGS,
    RevisionedViewSet,
    crud_docs,
)
from sources.filters import SourceFilterSet
from sources.models import Source
from sources.serializers import SourceSerializer, SourceWriteSerializer
from sources.services import source_create, source_update


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
class SourceViewSet(RevisionedViewSet):
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
