"""Query filters of the source list."""

import django_filters as filters

from ledger.api.filters import DateFilter, FilterSet
from sources.models import Source


class SourceFilterSet(FilterSet):
    language = filters.CharFilter(help_text="BCP 47 language tag, e.g. en.")
    published_after = DateFilter(
        field_name="published_on",
        lookup_expr="gte",
        help_text="Published on or after (YYYY-MM-DD).",
    )
    published_before = DateFilter(
        field_name="published_on",
        lookup_expr="lte",
        help_text="Published on or before (YYYY-MM-DD); not before published_after.",
    )
    sha256 = filters.CharFilter(help_text="Hex sha256 of the text: is this document stored?")
    ranges = (("published_after", "published_before"),)

    class Meta:
        model = Source
        fields = []
