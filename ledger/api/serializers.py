"""Serializer bases and fields every resource shares: strict input, ids,
dates, and the representations of history and the change feed."""

from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.db import models
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.relations import MANY_RELATION_KWARGS

from ledger import registry
from ledger.api.inputs import ID_TEXT, MAX_ID, SLUG_MAX_LENGTH, date_from_iso, id_or_slug
from ledger.models import SLUG_RE, ChangeAction

# Shared pieces ----------------------------------------------------------------


SLUG_HELP = (
    "A readable handle, unique. Left out on create, it is made from the name (armenia, "
    "armenia-2, ...); left out of a full update (PUT), it is kept."
)


def absolute_url(request, path: str) -> str:
    """`path` as an absolute URL of the request's host (as is without a request)."""
    return request.build_absolute_uri(path) if request else path


class IsoDateField(serializers.DateField):
    """A date written YYYY-MM-DD, and only so; an impossible one (2023-02-30)
    is called impossible, not badly formatted."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                return date_from_iso(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc), code="invalid") from None
        return super().to_internal_value(value)


class StrictStringMixin(serializers.Field):
    """A JSON string, and only so: DRF would take the number 0 as "0" and
    `true` as an error only by luck, where the schema says string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Not a valid string.", code="invalid")
        return super().to_internal_value(data)


class StrictCharField(StrictStringMixin, serializers.CharField):
    pass


class StrictSlugField(StrictStringMixin, serializers.SlugField):
    pass


class StrictURLField(StrictStringMixin, serializers.URLField):
    pass


class StrictEmailField(StrictStringMixin, serializers.EmailField):
    pass


class StrictIPAddressField(StrictStringMixin, serializers.IPAddressField):
    pass


# DRF's string fields, each with its strict variant: ModelSerializer builds these.
STRICT_STRING_FIELDS = {
    serializers.CharField: StrictCharField,
    serializers.SlugField: StrictSlugField,
    serializers.URLField: StrictURLField,
    serializers.EmailField: StrictEmailField,
    serializers.IPAddressField: StrictIPAddressField,
}


class IdListField(serializers.ManyRelatedField):
    """A list of ids: a JSON array, never an object (DRF would take an object's
    keys as the ids, and `{}` as an empty list)."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return super().to_internal_value(data)


def takes_slugs(model: type[models.Model]) -> bool:
    """Whether records of `model` are referred to by slug as well as by id."""
    return any(field.name == "slug" for field in model._meta.concrete_fields)


class IdField(serializers.PrimaryKeyRelatedField):
    """A record's id: a whole number (or a string of digits), never a float, a
    boolean or a list; an id no record can have is "does not exist". For a
    model with a slug (actors, places), its slug is accepted too: `"armenia"`
    means what the id of Armenia means. Digits are always an id."""

    default_error_messages = {
        "incorrect_slug": "Expected an id or a slug, received {value!r}: an id is a whole "
        "number, a slug has letters, digits, hyphens and underscores (e.g. armenia).",
        "slug_does_not_exist": "No {model} has the slug {slug!r}.",
    }

    def __init__(self, *args, follow_merges: bool = True, **kwargs):
        # A reference to a merged record (ledger.merging) means the record it
        # was merged into, unless told otherwise.
        self.follow_merges = follow_merges
        super().__init__(*args, **kwargs)

    @classmethod
    def many_init(cls, *args, **kwargs):
        list_kwargs: dict[str, Any] = {"child_relation": cls(*args, **kwargs)}
        for key in kwargs:
            if key in MANY_RELATION_KWARGS:
                list_kwargs[key] = kwargs[key]
        return IdListField(**list_kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("incorrect_type", data_type=type(data).__name__)
        queryset = self.get_queryset()
        assert queryset is not None  # a writable related field has one (DRF asserts it)
        model = queryset.model
        if isinstance(data, str) and not ID_TEXT.fullmatch(data):
            if not takes_slugs(model):
                self.fail("incorrect_type", data_type="str")
            if not isinstance(id_or_slug(data), str):
                self.fail("incorrect_slug", value=data[: SLUG_MAX_LENGTH + 1])
            return self._load(("slug", model, data), lambda: self._by_slug(queryset, data))
        if not 0 < int(data) <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return self._load((model, int(data)), lambda: super(IdField, self).to_internal_value(data))

    def _by_slug(self, queryset, slug: str):
        try:
            return queryset.get(slug=slug)
        except queryset.model.DoesNotExist:
            self.fail("slug_does_not_exist", model=queryset.model._meta.verbose_name, slug=slug)

    def _load(self, key, load):
        # Each record once per request: two thousand evidence items citing one
        # source read its text once, not two thousand times.
        # DRF's context is a dict; its stubs say Mapping.
        loaded = self.context.setdefault("_loaded_records", {})  # type: ignore[attr-defined]
        if key not in loaded:
            record = load()
            target = getattr(record, "merged_into_id", None)
            if target is not None and self.follow_merges:
                record = type(record)._default_manager.get(pk=target)
            loaded[key] = record
        return loaded[key]


class IdFieldSchema(OpenApiSerializerFieldExtension):
    """An IdField in the schema: an integer, or for a model with slugs an
    integer or a slug string (oneOf). The title (`ActorIdOrSlug`) names the
    type the generated clients make of it; as a component of its own, the
    TypeScript generator warns on a oneOf of plain types."""

    target_class = IdField

    def _slugged_model(self) -> type[models.Model] | None:
        queryset = self.target.get_queryset()
        if queryset is None or not takes_slugs(queryset.model):
            return None
        return queryset.model

    def map_serializer_field(self, auto_schema, direction):
        model = self._slugged_model()
        if model is None:
            return auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        id_schema = {"type": "integer"}
        slug_schema = {
            "type": "string",
            "pattern": SLUG_RE.replace("\\Z", "$"),
            "maxLength": SLUG_MAX_LENGTH,
        }
        name = model._meta.verbose_name
        return {
            "title": f"{model.__name__}IdOrSlug",
            "oneOf": [id_schema, slug_schema],
            "description": f"The {name}'s id, or its slug (digits alone are an id).",
        }


# For every input serializer: a body key that is not a writable field is an
# error with its own pointer, not silently dropped, whether it is misspelt
# (`titel`) or read-only (`id`, `revision`, `url`, `created_at`). Nested input
# serializers (participants, evidence, identifiers) use it too. Dates are
# YYYY-MM-DD only; strings are JSON strings (declared fields use the Strict...
# classes too). An item of a nested list is complete even in a PATCH: the list
# replaces the stored one, but DRF would apply the PATCH's partial to the items
# and let one without a required field through. (A comment, not a docstring:
# the OpenAPI document would take a docstring as the description of every
# serializer without one of its own.)
class StrictInputMixin(serializers.Serializer):
    serializer_field_mapping = {
        **{
            model_field: STRICT_STRING_FIELDS.get(field, field)
            for model_field, field in serializers.ModelSerializer.serializer_field_mapping.items()
        },
        models.DateField: IsoDateField,
    }
    serializer_related_field = IdField

    def to_internal_value(self, data):
        errors = {}
        if isinstance(data, Mapping):
            writable = [name for name, field in self.fields.items() if not field.read_only]
            for key in data:
                if key not in writable:
                    errors[key] = [self._unexpected_field(str(key), writable)]
            if self.parent is not None and getattr(self.root, "partial", False):
                for name in writable:
                    if self.fields[name].required and name not in data:
                        message = self.fields[name].error_messages["required"]
                        errors[name] = [ErrorDetail(str(message), code="required")]
            limit = settings.API_MAX_LIST_ITEMS
            for key, value in data.items():
                if isinstance(value, list) and len(value) > limit:
                    # Refused before any item is looked at: one write stays bounded.
                    raise serializers.ValidationError(
                        {
                            key: [
                                ErrorDetail(
                                    f"At most {limit} items per list; this one has {len(value)}. "
                                    "Split the change into several writes.",
                                    code="too_many_items",
                                )
                            ]
                        }
                    )
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if errors and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **errors}) from None
            raise
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def _unexpected_field(self, key: str, writable: list[str]) -> ErrorDetail:
        model = getattr(getattr(self, "Meta", None), "model", None)
        known = {"id", "url"} | {f.name for f in model._meta.concrete_fields} if model else set()
        if key in known or key in self.fields:
            return ErrorDetail(
                f"{key} is read-only: the server sets it. Leave it out of the body.",
                code="read_only",
            )
        return ErrorDetail(
            f"Unknown field {key}. The fields are: {', '.join(writable)}.",
            code="unknown_field",
        )


class DatedInputMixin(serializers.Serializer):
    """Checks a dated interval before it reaches the database's constraints."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        # A partial update keeps the stored values of fields left out; a full one resets them.
        instance = self.instance if self.partial else None

        def current(name):
            return attrs[name] if name in attrs else getattr(instance, name, None)

        start, end = current("date_start"), current("date_end")
        if start is None and end is None:
            raise serializers.ValidationError(
                {"date_end": "Give date_start, date_end or both; an interval needs a bound."}
            )
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError({"date_start": "Must not be after date_end."})
        return attrs


# History ------------------------------------------------------------------------


class MergeContextSerializer(serializers.Serializer):
    """The merge a revision was part of (POST .../merge/ or .../unmerge/)."""

    merged = serializers.IntegerField(help_text="The id of the record merged.")
    into = serializers.IntegerField(help_text="The id of the record it was merged into.")
    undone = serializers.BooleanField(help_text="True for the unmerge that undid it.")


class HistoryEntrySerializer(serializers.Serializer):
    """One revision of a record."""

    revision = serializers.IntegerField()
    action = serializers.ChoiceField(choices=ChangeAction.choices)
    time = serializers.DateTimeField()
    user = serializers.CharField(
        allow_null=True,
        help_text="Who made the change, if known: the account name for signed-in readers, "
        "a stable pseudonym (writer-1a2b3c4d) for anonymous ones.",
    )
    auth = serializers.CharField(allow_null=True, help_text="token or session (signed-in readers).")
    via = serializers.CharField(
        allow_null=True, help_text="Through what: api, admin, seed, shell; null for raw SQL."
    )
    request_id = serializers.CharField(
        allow_null=True,
        help_text="The server's id of the request that made the change (signed-in readers).",
    )
    client_request_id = serializers.CharField(
        allow_null=True,
        help_text="The X-Request-ID the client sent, if any: chosen by the client, so it "
        "proves nothing (signed-in readers).",
    )
    reason = serializers.CharField(allow_null=True, help_text="The reason the writer gave.")
    merge = MergeContextSerializer(
        allow_null=True, help_text="The merge this revision was part of, if any: on both records."
    )
    changes = serializers.DictField(
        child=serializers.DictField(),
        help_text="Each changed field with its value `before` and `after`.",
    )
    url = serializers.URLField(help_text="The record as it was at this revision.")


class HistorySerializer(serializers.Serializer):
    next = serializers.URLField(
        allow_null=True, help_text="The next, older page, or null on the last page."
    )
    results = HistoryEntrySerializer(many=True)


class ChangeSerializer(serializers.Serializer):
    """One entry of the change feed."""

    resource = serializers.ChoiceField(choices=[])
    id = serializers.IntegerField(help_text="The record's id.")
    action = serializers.ChoiceField(choices=ChangeAction.choices)
    revision = serializers.IntegerField(help_text="The revision this change made.")
    changed_at = serializers.DateTimeField()
    url = serializers.URLField()
    # DRF's metaclass takes declared fields off the class: `.data` stays the property.
    data = serializers.JSONField(  # type: ignore[assignment]
        allow_null=True,
        help_text="The record's current representation, or null if it no longer exists.",
    )

    def get_fields(self):
        fields = super().get_fields()
        resource = cast(serializers.ChoiceField, fields["resource"])
        resource.choices = registry.names()  # registered when the apps are ready
        return fields


class ChangeFeedSerializer(serializers.Serializer):
    next = serializers.URLField(
        allow_null=True, help_text="More changes are ready now: follow this link."
    )
    cursor = serializers.CharField(
        help_text="Position after the last change listed: pass it as `after` next time."
    )
    results = ChangeSerializer(many=True)


# The API root -------------------------------------------------------------------


class ApiLinkSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="What the link leads to: `events`, `changes`, ...")
    url = serializers.URLField(help_text="Its absolute URL.")
    description = serializers.CharField(help_text="What is there, in a sentence.")


class ApiRootSerializer(serializers.Serializer):
    resources = ApiLinkSerializer(
        many=True,
        help_text="Every resource, by name, with the URL of its list; a record is at "
        "`<url><id>/`, its history at `<url><id>/history/`.",
    )
    endpoints = ApiLinkSerializer(
        many=True,
        help_text="The other endpoints: change feed, documents, vocabulary, export, and "
        "the OpenAPI document with its viewers.",
    )
