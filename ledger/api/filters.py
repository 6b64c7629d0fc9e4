"""Query parameters: the filter backend, the strict check of parameters, and
the filters and filterset base every resource list uses."""

import copy
import datetime
import difflib
import re
from typing import cast

import django_filters as filters
from django import forms
from django.db import models
from django.http import QueryDict
from django_filters import CharFilter, MultipleChoiceFilter
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from ledger.api.errors import InvalidQuery
from ledger.api.inputs import ID_TEXT, MAX_ID, SLUG_MAX_LENGTH, date_from_iso, id_or_slug
from ledger.models import COUNTRY_CODE_RE

# Filtering and throttling ---------------------------------------------------


class FilterBackend(DjangoFilterBackend):
    """django-filter, reporting invalid values per query parameter."""

    def filters_given(self, request, queryset, view) -> bool:
        """Whether the request names any of the view's filters."""
        filterset_class = self.get_filterset_class(view, queryset)
        return filterset_class is not None and any(
            name in request.query_params for name in filterset_class.base_filters
        )

    def filter_queryset(self, request, queryset, view):
        if not self.filters_given(request, queryset, view):
            return queryset  # nothing to filter by: no filterset to build (a hot path)
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        # An empty value of a typed filter (a date, an id, a choice) is an error, not
        # "no filter": the schema says what a value must look like.
        empty = [
            name
            for name, declared in filterset.filters.items()
            if "" in request.query_params.getlist(name) and not isinstance(declared, CharFilter)
        ]
        if empty:
            raise InvalidQuery(
                {name: ["Give a value, or leave the parameter out."] for name in empty}
            )
        if not filterset.is_valid():
            raise InvalidQuery(filterset.errors)
        return filterset.qs


class StrictQueryMixin(APIView):
    """For API views: a query parameter the view does not take is refused (400,
    naming it and the accepted ones) rather than ignored, and so is a repeated
    parameter that takes one value. A misspelt filter must not answer every
    record.

    Accepted everywhere: `format`. On lists (and plain GET views such as the
    export): the filterset's filters, repeatable when they mean "any of"
    (MultipleChoiceFilter and its subclasses), and the paginator's
    `query_parameters`. Besides: `query_parameters[action]` (the viewset
    action, or the HTTP method of a plain view), of which
    `repeatable_parameters` may be repeated.
    """

    query_parameters: dict[str, tuple[str, ...]] = {}
    repeatable_parameters: tuple[str, ...] = ()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # 401, 403 and 429 come first
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            # A method the view does not take is a 405, whatever the query says.
            self.http_method_not_allowed(request, *args, **kwargs)
        check_query_parameters(request.query_params, self.accepted_query_parameters(request))

    def accepted_query_parameters(self, request) -> dict[str, bool]:
        """The parameters this request may carry, each with whether it may repeat."""
        action = getattr(self, "action", None) or request.method.lower()
        if action == "head":  # answered by get(), with the same parameters
            action = "get"
        accepted = {api_settings.URL_FORMAT_OVERRIDE: False}
        for name in self.query_parameters.get(action, ()):
            accepted[name] = name in self.repeatable_parameters
        if action in ("list", "get", "head"):
            filterset_class = getattr(self, "filterset_class", None)
            if filterset_class is not None:
                for name, declared in filterset_class.base_filters.items():
                    accepted[name] = isinstance(declared, MultipleChoiceFilter)
            paginator = getattr(self, "paginator", None)
            for name in getattr(paginator, "query_parameters", ()):
                accepted[name] = False
        return accepted


def check_query_parameters(query: QueryDict, accepted: dict[str, bool]) -> None:
    """Refuse parameters not in `accepted`, and repeats of those that take one value."""
    errors = {}
    for name, values in query.lists():
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            errors[name] = [
                ErrorDetail(
                    f"Unknown parameter.{hint} Accepted here: {', '.join(sorted(accepted))}.",
                    code="unknown_parameter",
                )
            ]
        elif len(values) > 1 and not accepted[name]:
            errors[name] = [
                ErrorDetail(
                    f"Given {len(values)} times; this parameter takes one value.",
                    code="repeated_parameter",
                )
            ]
    if errors:
        raise InvalidQuery(errors)


class _ShallowFields(dict):
    """A form's fields, copied field by field instead of deeply: a form copies
    its fields for every instance, and filter forms only validate."""

    def __deepcopy__(self, memo):
        return {name: copy.copy(field) for name, field in self.items()}


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet, lighter on every request: its filters are
    copied one by one rather than deeply (a filter's per-request state is its
    model and parent), and its form class is built once per filterset class.
    Deep copies were a fifth of the cost of a filtered event page."""

    # Pairs of (lower bound, upper bound) parameters: the lower must not exceed the upper.
    ranges: tuple[tuple[str, str], ...] = ()

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        # As django-filter's FilterSet.__init__, but for the copy of the filters.
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        self.filters = {name: copy.copy(f) for name, f in self.base_filters.items()}
        for filter_ in self.filters.values():
            filter_.model = queryset.model
            filter_.parent = self
            if filter_.method is not None:
                filter_.method = filter_.method  # a FilterMethod bound to this copy

    def get_form_class(self):
        cls = type(self)
        if "_form_class" not in cls.__dict__:
            fields = {name: filter_.field for name, filter_ in cls.base_filters.items()}
            form = cast(type[forms.Form], type(f"{cls.__name__}Form", (self._meta.form,), fields))
            form.base_fields = _ShallowFields(form.base_fields)
            cls._form_class = form
        return cls._form_class

    def is_valid(self) -> bool:
        """The form's validation, and each of `ranges`: a range whose start
        comes after its end matches nothing, so it is a mistake, named on both
        parameters."""
        if not super().is_valid():
            return False
        cleaned = self.form.cleaned_data
        for low, high in self.ranges:
            if cleaned.get(low) and cleaned.get(high) and cleaned[low] > cleaned[high]:
                message = f"{low} ({cleaned[low]}) is after {high} ({cleaned[high]})."
                self.form.add_error(low, forms.ValidationError(message, code="empty_range"))
                self.form.add_error(high, forms.ValidationError(message, code="empty_range"))
        return not self.form.errors


class IsoDateField(forms.DateField):
    """A date written YYYY-MM-DD, and only so; an impossible one (2023-02-30)
    is called impossible, not badly formatted."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime.date):
            return value
        try:
            return date_from_iso(str(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class DateFilter(filters.DateFilter):
    field_class = IsoDateField


class AnyOfFilter(filters.MultipleChoiceFilter):
    """A repeatable parameter matching any of its values (`type=A&type=B`); the
    schema declares it an exploded array. The values reach a `method` as a
    list; without a method, the filter is `field_name__in` (no DISTINCT: the
    fields filtered this way are the model's own columns)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        return self.get_method(qs)(**{f"{self.field_name}__in": sorted(set(value))})


class IdsField(forms.MultipleChoiceField):
    """Record ids, one per repetition of the parameter."""

    # Ids, cleaned to whole numbers: not the strings of its base class.
    def to_python(self, value) -> list[int]:  # type: ignore[override]
        ids = []
        for item in value or ():
            if not isinstance(item, str) or not ID_TEXT.fullmatch(item) or int(item) > MAX_ID:
                raise forms.ValidationError(
                    "%(value)r is not an id: ids are whole numbers, e.g. 3.",
                    code="invalid",
                    params={"value": item},
                )
            ids.append(int(item))
        return ids

    def validate(self, value):
        forms.Field.validate(self, value)  # any id may be asked for: no choices


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(AnyOfFilter):
    """Record ids: `actor=2&actor=3` is either of them."""

    field_class = IdsField


# Ids start at 1: a value that matches no record, for slugs that name none.
NO_RECORD = 0


class IdsOrSlugsField(IdsField):
    """References to records of `model`, one per repetition of the parameter,
    each an id or a slug, cleaned to ids: the slugs are looked up in one query.
    A slug no record has is like an id no record has: it matches nothing."""

    def __init__(self, *args, model: type[models.Model], **kwargs):
        self.model = model
        super().__init__(*args, **kwargs)

    # Ids, cleaned to whole numbers: not the strings of its base class.
    def to_python(self, value) -> list[int]:  # type: ignore[override]
        ids: list[int] = []
        slugs: list[str] = []
        for item in value or ():
            reference = id_or_slug(item) if isinstance(item, str) else None
            if reference is None:
                raise forms.ValidationError(
                    "%(value)r is neither an id nor a slug: an id is a whole number (e.g. 3), "
                    "a slug has letters, digits, hyphens and underscores (e.g. armenia).",
                    code="invalid",
                    params={
                        "value": item[: SLUG_MAX_LENGTH + 1] if isinstance(item, str) else item
                    },
                )
            if isinstance(reference, int):
                ids.append(reference)
            else:
                slugs.append(reference)
        if slugs:
            found = self.model._default_manager.filter(slug__in=set(slugs))
            ids.extend(found.values_list("pk", flat=True))
            if not ids:
                ids.append(NO_RECORD)
        if ids and any(field.name == "merged_into" for field in self.model._meta.concrete_fields):
            # A merged record's id or slug means the record it was merged into.
            merged = dict(
                self.model._default_manager.filter(
                    pk__in=ids, merged_into__isnull=False
                ).values_list("pk", "merged_into")
            )
            ids = [merged.get(pk, pk) for pk in ids]
        return ids


@extend_schema_field(
    {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": SLUG_MAX_LENGTH}
)
class IdOrSlugFilter(AnyOfFilter):
    """References to records of `model` (actors, places) by id or slug:
    `actor=armenia&actor=3` is either of them."""

    field_class = IdsOrSlugsField

    def __init__(self, *args, model: type[models.Model], **kwargs):
        super().__init__(*args, model=model, **kwargs)


class CodesField(forms.MultipleChoiceField):
    """Codes of a fixed form (ISO 3166-1 alpha-3 country codes), in any case."""

    def __init__(self, *args, pattern: str, message: str, **kwargs):
        self.pattern, self.message = re.compile(pattern), message
        super().__init__(*args, **kwargs)

    def to_python(self, value) -> list[str]:
        codes = []
        for item in value or ():
            code = item.upper() if isinstance(item, str) else ""
            if not self.pattern.fullmatch(code):
                raise forms.ValidationError(
                    "%(value)r: %(message)s",
                    code="invalid",
                    params={"value": item, "message": self.message},
                )
            codes.append(code)
        return codes

    def validate(self, value):
        forms.Field.validate(self, value)


@extend_schema_field(OpenApiTypes.STR)
class CountryFilter(AnyOfFilter):
    """ISO 3166-1 alpha-3 codes (or the project's own, such as EUR), any case."""

    field_class = CodesField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("pattern", COUNTRY_CODE_RE.strip("^$"))
        kwargs.setdefault("message", "use a three-letter ISO 3166-1 alpha-3 code, e.g. ARM.")
        super().__init__(*args, **kwargs)


class FilterSchema(DjangoFilterExtension):
    """drf-spectacular's description of django-filter parameters, with two
    corrections: a filter whose type is declared (`extend_schema_field`, as
    IdFilter does) keeps its help text, and a repeatable filter over an array
    column (`context`) takes single values, not arrays."""

    target_class = "ledger.api.filters.FilterBackend"
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        parameters = super().resolve_filter_field(
            auto_schema, model, filterset_class, field_name, filter_field
        )
        for parameter in parameters:
            if not parameter.get("description"):
                description = self._get_field_description(filter_field, None)
                if description:
                    parameter["description"] = description
            schema = parameter["schema"]
            if schema.get("type") == "array" and schema["items"].get("type") == "array":
                schema["items"] = schema["items"]["items"]
        return parameters
