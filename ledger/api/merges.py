"""The API of a mergeable resource (actors, places): merging a duplicate into
another record and undoing it, and a merged record answering with a
permanent redirect to the record it was merged into (ledger/merging.py)."""

from typing import Any

import pghistory
from django.db import transaction
from django.http import HttpResponsePermanentRedirect
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from ledger.api.conditional import etag_matches, revision_etag
from ledger.api.errors import Conflict, PreconditionFailed
from ledger.api.serializers import IdField, StrictCharField, StrictInputMixin
from ledger.api.viewsets import RevisionedViewSet
from ledger.context import MAX_REASON_LENGTH, record_api_context
from ledger.merging import MergeConflict, lock_pair, relation_names


class MergeRequestSerializer(StrictInputMixin, serializers.Serializer):
    """Which record to merge this one into, at which revision, and why.
    `into` is set per resource (MergeableViewSet.merge_request_serializer)."""

    into_revision = serializers.IntegerField(
        min_value=1,
        help_text="The revision of the record merged into (its ETag without quotes), "
        "as If-Match gives the revision of the record merged.",
    )
    reason = StrictCharField(
        max_length=MAX_REASON_LENGTH, help_text="Why they are one record: kept in history."
    )


class UnmergeRequestSerializer(StrictInputMixin, serializers.Serializer):
    reason = StrictCharField(
        max_length=MAX_REASON_LENGTH, help_text="Why the merge is undone: kept in history."
    )


class MergeReportSerializer(serializers.Serializer):
    """What a merge moved (or an unmerge moved back)."""

    merged = serializers.URLField(help_text="The merged record (it redirects to `into`).")
    into = serializers.URLField(help_text="The record it was merged into.")
    moved = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Rows that moved, by relation (participations, statements, aliases, ...).",
    )
    dropped = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Rows not moved because the target already had the like of them "
        "(the same event and role, say): kept in the merge record, restored by unmerge.",
    )


class CanChange(BasePermission):
    """A merge or unmerge changes the records of the resource: it takes the
    change permission on them (a POST would otherwise ask for add)."""

    def has_permission(self, request, view) -> bool:
        meta = view.queryset.model._meta
        return bool(
            request.user.is_authenticated
            and request.user.has_perm(f"{meta.app_label}.change_{meta.model_name}")
        )


def merge_request_serializer(model) -> type[serializers.Serializer]:
    """The merge request of `model`: `into` by id or slug (not followed
    through a merge: merging into a merged record is refused)."""
    return type(
        f"{model.__name__}MergeRequestSerializer",
        (MergeRequestSerializer,),
        {
            "into": IdField(
                queryset=model._default_manager.all(),
                follow_merges=False,
                help_text=f"The {model._meta.verbose_name} to merge into, by id or slug.",
            ),
            "__doc__": MergeRequestSerializer.__doc__,
        },
    )


class MergeableViewSet(RevisionedViewSet):
    """A RevisionedViewSet whose records can be merged: `POST {id}/merge/`
    and `POST {id}/unmerge/`. A merged record is left out of the list; its
    detail answers 308 to the record it was merged into, and a write to it is
    a 409 naming that record. Subclasses implement
    `perform_service_merge(record, into)` and `perform_service_unmerge(record)`."""

    query_parameters = {**RevisionedViewSet.query_parameters, "merge": (), "unmerge": ()}

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            queryset = queryset.filter(merged_into__isnull=True)
        return queryset

    def get_permissions(self):
        if self.action in ("merge", "unmerge"):
            return [CanChange()]
        return super().get_permissions()

    def get_serializer_class(self):
        if self.action == "merge":
            return merge_request_serializer(self.queryset.model)
        if self.action == "unmerge":
            return UnmergeRequestSerializer
        return super().get_serializer_class()

    def detail_url(self, pk: int) -> str:
        return self.request.build_absolute_uri(reverse(f"{self.basename}-detail", args=[pk]))

    def redirect_for(self, instance):
        target = getattr(instance, "merged_into_id", None)
        if target is None:
            return None
        # 308: the same method at the new address (Django: preserve_request).
        return HttpResponsePermanentRedirect(self.detail_url(target), preserve_request=True)

    def update(self, request, *args, **kwargs):
        self.refuse_merged(self.get_object())
        return super().update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        self.refuse_merged(self.get_object())
        return super().destroy(request, *args, **kwargs)

    def refuse_merged(self, instance) -> None:
        if instance.merged_into_id is not None:
            raise Conflict(
                f"This record was merged into {self.detail_url(instance.merged_into_id)}: "
                "change that one, or unmerge this one first."
            )

    @action(detail=True, methods=["post"], url_path="merge")
    def merge(self, request, pk=None):
        if_match = self.required_if_match()
        record = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model: Any = self.queryset.model  # a Mergeable
        with transaction.atomic():
            locked, into = lock_pair(model, record.pk, data["into"].pk)
            if locked is None or into is None:
                raise Conflict("One of the two records was deleted meanwhile.")
            if not etag_matches(if_match, locked.revision, weak=False):
                raise PreconditionFailed(locked.revision)
            if into.revision != data["into_revision"] and into.merged_into_id is None:
                raise PreconditionFailed(into.revision)
            record_api_context(request)
            pghistory.context(reason=data["reason"], merge={"merged": locked.pk, "into": into.pk})
            try:
                done = self.perform_service_merge(locked, into)
            except MergeConflict as exc:
                raise Conflict(str(exc)) from None
        return Response(self.report(locked.pk, into.pk, done))

    @action(detail=True, methods=["post"], url_path="unmerge")
    def unmerge(self, request, pk=None):
        if_match = self.required_if_match()
        record = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            locked: Any = self.lock_revision(record, if_match)  # a Mergeable
            record_api_context(request)
            pghistory.context(
                reason=serializer.validated_data["reason"],
                unmerge={"merged": locked.pk, "into": locked.merged_into_id},
            )
            into = locked.merged_into_id
            try:
                done = self.perform_service_unmerge(locked)
            except MergeConflict as exc:
                raise Conflict(str(exc)) from None
        representation = self.read_representation(locked)
        return Response(
            self.report(locked.pk, into, done),
            headers={"ETag": revision_etag(representation["revision"])},
        )

    def report(self, merged: int, into: int, done: dict[str, Any]) -> dict[str, Any]:
        names = relation_names(self.queryset.model)
        return MergeReportSerializer(
            {
                "merged": self.detail_url(merged),
                "into": self.detail_url(into),
                "moved": {names.get(k, k): len(v["moved"]) for k, v in done["moved"].items()},
                "dropped": {
                    names.get(k, k): len(v["dropped"])
                    for k, v in done["moved"].items()
                    if v["dropped"]
                },
            }
        ).data

    def perform_service_merge(self, record, into) -> dict[str, Any]:
        raise NotImplementedError

    def perform_service_unmerge(self, record) -> dict[str, Any]:
        raise NotImplementedError


def merge_docs(singular: str, plural: str, moves: str) -> dict:
    """The OpenAPI description of a resource's merge and unmerge."""
    if_match = OpenApiParameter(
        "If-Match",
        str,
        OpenApiParameter.HEADER,
        required=True,
        description=f"The ETag of the {singular} merged (or unmerged).",
    )
    return {
        "merge": extend_schema(
            summary=f"Merge a duplicate {singular} into another",
            description=f"In one transaction, {moves} move to the {singular} named by `into` "
            "(by id or slug), whose revision `into_revision` must be current, as `If-Match` "
            f"must be this {singular}'s. A row the target already has the like of is dropped "
            "and kept in the merge record. This record keeps its id and history; from now on "
            "its detail answers **308 Permanent Redirect** to the target, it is left out of "
            f"the list, and filters by its id or slug find the target's records. Merging a "
            f"{singular} into itself, into a merged one or one that is gone is a 409 or 404 "
            "problem; so is a merge the data refuses (the problem says why). Needs the "
            f"change permission on {plural}.",
            parameters=[if_match],
            responses={200: MergeReportSerializer},
        ),
        "unmerge": extend_schema(
            summary=f"Undo a {singular}'s merge",
            description="Moves back exactly what the merge moved (wherever it is now), "
            "restores the rows it dropped and undoes what it added; the record answers its "
            f"own detail again. Needs the change permission on {plural}.",
            parameters=[if_match],
            responses={200: MergeReportSerializer},
        ),
    }
