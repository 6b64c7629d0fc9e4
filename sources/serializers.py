"""JSON representations of sources and of evidence spans."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from ledger.api.serializers import (
    IdField,
    StrictCharField,
    StrictInputMixin,
    StrictURLField,
)
from sources.models import Evidence, Source
from sources.services import Span, locate_quote

# Sources ------------------------------------------------------------------------


class SourceSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="source-detail")
    document_url = serializers.CharField(
        source="url", read_only=True, help_text="Where the document was published, if known."
    )

    class Meta:
        model = Source
        fields = [
            "id",
            "url",
            "revision",
            "title",
            "publisher",
            "document_url",
            "published_on",
            "language",
            "text",
            "sha256",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A news article",
            value={
                "title": "Border talks in Brussels",
                "publisher": "Example Wire",
                "document_url": "https://news.example.org/border-talks",
                "published_on": "2024-03-15",
                "language": "en",
                "text": "Armenia and Azerbaijan held border talks in Brussels on Friday.",
            },
            request_only=True,
        )
    ]
)
class SourceWriteSerializer(StrictInputMixin, serializers.ModelSerializer):
    document_url = StrictURLField(source="url", required=False, allow_blank=True, max_length=2000)

    class Meta:
        model = Source
        fields = ["title", "publisher", "document_url", "published_on", "language", "text"]


class EvidenceSerializer(serializers.ModelSerializer):
    """A cited span: `quote` is exactly the source's text[start:end]."""

    class Meta:
        model = Evidence
        fields = ["source", "start", "end", "quote"]
        read_only_fields = fields


class EvidenceInputSerializer(StrictInputMixin, serializers.Serializer):
    """A span to cite: give `start` and `end`, or the exact `quote` (with
    `occurrence` when it appears more than once) and the offsets are found."""

    source = IdField(queryset=Source.objects.all())
    start = serializers.IntegerField(min_value=0, required=False)
    end = serializers.IntegerField(min_value=1, required=False)
    quote = StrictCharField(required=False, trim_whitespace=False)
    occurrence = serializers.IntegerField(
        min_value=1, required=False, help_text="Which match of `quote` is meant, from 1."
    )

    def validate(self, attrs) -> Span:
        source, text = attrs["source"], attrs["source"].text
        start, end, quote = attrs.get("start"), attrs.get("end"), attrs.get("quote")
        if start is not None or end is not None:
            if start is None or end is None:
                raise serializers.ValidationError("Give both start and end, or a quote.")
            if not start < end <= len(text):
                raise serializers.ValidationError(
                    {"end": f"The span must satisfy start < end <= {len(text)} (the text length)."}
                )
            problem = None if quote is None else source.misquote(start, end, quote)
            if problem:
                raise serializers.ValidationError({"quote": problem})
            return Span(source=source, start=start, end=end)
        if quote is None:
            raise serializers.ValidationError("Give start and end, or a quote.")
        try:
            start, end = locate_quote(text=text, quote=quote, occurrence=attrs.get("occurrence"))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"quote": exc.messages}) from None
        return Span(source=source, start=start, end=end)
