"""Reading history: a record's revisions, rebuilt as they were, with what
changed between them."""

import datetime
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from django.conf import settings
from django.db import models

from ledger import registry

# Reading ----------------------------------------------------------------------


@dataclass
class Revision:
    """One revision of a resource, as recorded by its snapshots."""

    revision: int
    action: str  # create, update or delete
    time: datetime.datetime
    context: dict[str, Any]
    snapshot: Any = None  # the last snapshot of the revision (None once deleted)
    representation: dict | None = None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)


# The model of a record being rebuilt, and of one of its rows.
M = TypeVar("M", bound=models.Model)
R = TypeVar("R", bound=models.Model)


def snapshot_model(model: type[models.Model]) -> type[Any]:
    # pghistory makes the snapshot models at run time: no static types to check.
    return cast(type[Any], model._meta.get_field("snapshots").related_model)


def has_history(model: type[models.Model], pk: Any) -> bool:
    return snapshot_model(model).objects.filter(pgh_obj_id=pk).exists()


def revisions(model: type[models.Model], pk: Any) -> list[Revision]:
    """The revisions of one record, oldest first, from its snapshots. Several
    snapshots written by one transaction form one revision; a deletion is a
    revision of its own unless its transaction also changed the record."""
    rows = (
        snapshot_model(model)
        .objects.filter(pgh_obj_id=pk)
        .select_related("pgh_context")
        .order_by("pgh_id")
    )
    result: list[Revision] = []
    for row in rows:
        metadata = row.pgh_context.metadata if row.pgh_context else {}
        last = result[-1] if result else None
        if row.pgh_label == "delete":
            if last is not None and last.time == row.pgh_created_at:
                last.action, last.snapshot = "delete", None
                last.context = metadata or last.context
            else:
                number = (last.revision if last else row.revision) + 1
                result.append(Revision(number, "delete", row.pgh_created_at, metadata))
        elif last is not None and last.revision == row.revision and last.action != "delete":
            last.snapshot, last.time = row, row.pgh_created_at
            last.context = metadata or last.context
        else:
            action = "create" if row.pgh_label == "insert" else "update"
            result.append(Revision(row.revision, action, row.pgh_created_at, metadata, row))
    return result


class Reconstruction(Generic[M]):
    """Builds instances of a resource as they were at a point in time, with
    their child rows in the serializer's prefetch caches, so the API
    serializers render them without touching the database."""

    def __init__(self, model: type[M], pk: Any):
        self.model = model
        self.pk = pk
        self._children: dict[str, list] = {}
        self._refs: dict[type[models.Model], dict[Any, models.Model]] = {}

    def at(self, snapshot) -> M:
        instance = self._instance(self.model, snapshot)
        cutoff = snapshot.pgh_created_at
        cache = {}
        for child in registry.children(self.model):
            snapshots = self._children_at(child.model, child.fk, cutoff)
            rows = sorted((self._instance(child.model, s) for s in snapshots), key=child.order)
            if child.through:
                target = child.model._meta.get_field(child.through).related_model
                cache[child.name] = [
                    self._ref(target, getattr(row, f"{child.through}_id")) for row in rows
                ]
            else:
                self._attach_refs(child.model, rows)
                cache[child.name] = rows
        # Django's prefetch cache, where the read serializers find the child rows.
        instance._prefetched_objects_cache = cache  # type: ignore[attr-defined]
        self._attach_refs(self.model, [instance])
        return instance

    def _children_at(self, child_model, fk: str, cutoff: datetime.datetime) -> list:
        if child_model not in self._children:
            self._children[child_model] = list(
                snapshot_model(child_model).objects.filter(**{fk: self.pk}).order_by("pgh_id")
            )
        latest = {}
        for row in self._children[child_model]:
            if row.pgh_created_at <= cutoff:
                latest[row.pgh_obj_id] = row
        return [row for row in latest.values() if row.pgh_label != "delete"]

    @staticmethod
    def _instance(model: type[R], snapshot) -> R:
        values = {}
        for model_field in model._meta.concrete_fields:
            if hasattr(snapshot, model_field.attname):
                values[model_field.attname] = getattr(snapshot, model_field.attname)
        values[model._meta.pk.attname] = snapshot.pgh_obj_id
        instance = model(**values)
        instance._state.adding = False
        return instance

    def _attach_refs(self, model, rows) -> None:
        """Point foreign keys at the referenced records (current, or as last
        recorded when since deleted)."""
        for name, target in registry.refs(model).items():
            for row in rows:
                value = getattr(row, f"{name}_id")
                if value is not None:
                    setattr(row, name, self._ref(target, value))

    def _ref(self, model, pk):
        known = self._refs.setdefault(model, {})
        if pk not in known:
            current = model.objects.filter(pk=pk).first()
            if current is None:
                last = snapshot_model(model).objects.filter(pgh_obj_id=pk).order_by("-pgh_id")
                current = self._instance(model, last.first()) if last.exists() else model(pk=pk)
            known[pk] = current
        return known[pk]


def with_representations(
    model: type[models.Model],
    pk: Any,
    render: Callable[[models.Model], dict],
    *,
    only: Iterable[int] | None = None,
) -> list[Revision]:
    """The record's revisions, each with its full representation (None once
    deleted) and the top-level fields that changed from the revision before.
    With `only` (revision numbers), just those revisions are rendered, with
    the ones before them to compare against: a page of a long history costs
    what the page holds."""
    history = revisions(model, pk)
    wanted = None if only is None else set(only)
    builder = Reconstruction(model, pk)
    before: dict | None = None
    for index, entry in enumerate(history):
        following = history[index + 1] if index + 1 < len(history) else None
        needed = (
            wanted is None
            or entry.revision in wanted
            or (following is not None and following.revision in wanted)
        )
        if not needed:
            before = None
            continue
        entry.representation = render(builder.at(entry.snapshot)) if entry.snapshot else None
        after = entry.representation
        if after is not None and (wanted is None or entry.revision in wanted):
            keys = [k for k in after if k not in ("revision", "updated_at")]
            entry.changes = {
                key: {"before": (before or {}).get(key), "after": after[key]}
                for key in keys
                if before is None or before.get(key) != after[key]
            }
        before = after
    return history


def context_summary(metadata: dict[str, Any], *, public: bool = False) -> dict[str, Any]:
    """Who made a revision, through what and why. The public (anonymous
    readers) sees a stable pseudonym for the writer instead of the account
    name, and neither the way they signed in nor the request ids: account
    names would feed login guessing."""
    user = metadata.get("username")
    merge = metadata.get("merge") or metadata.get("unmerge")
    if merge:  # a merge, or its undoing (ledger.api.merges)
        merge = {**merge, "undone": "unmerge" in metadata}
    if public:
        return {
            "user": writer_pseudonym(metadata.get("user"), user),
            "auth": None,
            "via": metadata.get("via"),
            "request_id": None,
            "client_request_id": None,
            "reason": metadata.get("reason"),
            "merge": merge,
        }
    return {
        "user": user,
        "auth": metadata.get("auth"),
        "via": metadata.get("via"),
        "request_id": metadata.get("request_id"),
        "client_request_id": metadata.get("client_request_id"),
        "reason": metadata.get("reason"),
        "merge": merge,
    }


def writer_pseudonym(user_id: Any, username: str | None) -> str | None:
    """The same writer always gets the same name, which says nothing of the
    account: `writer-` and 8 hex digits of a hash of the account's id and
    name, keyed with the SECRET_KEY (a new key or name, a new pseudonym)."""
    if user_id is None and username is None:
        return None
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"writer:{user_id}:{username}".encode(), hashlib.sha256
    )
    return f"writer-{digest.hexdigest()[:8]}"
