"""Merging a registry record into its duplicate, and undoing it.

A merge moves every row that refers to the merged record (through any
foreign key: participations, statement links, affiliations, aliases, events'
places, ...) to the record it is merged into, in one transaction. A row that
would then repeat one the target already has (the same event, actor and
role; empty values alike where the unique key counts them equal) is dropped
instead, and kept in the merge record. The merged record keeps its
id, its history and its fields, and gets `merged_into`; records merged into it
before are pointed at the new target too, so that a redirect is never a chain.
`merge` on the merged record lists what moved and what was dropped, by row
id (and, under `created`, rows the domain made for the merge), so that
`unmerge` moves exactly that back, restores the dropped rows and deletes the
made ones.

Which differences between the two records refuse a merge (two values of one
identifier scheme, say) is the domain's to say: `merge(..., check=...)`.
`preview` says what a merge would move, drop or refuse, found the same way,
without doing it (the admin's confirmation page).

Every record whose rows moved gains a revision, a history snapshot in the
merge's context and a change-feed entry, as the row triggers would give it,
and the merged record's entry is marked `merge` (ledger.models.ChangeAction),
in the same transaction. For the moved rows and the records they touch,
the merge does the triggers' work itself, set-based (`_move`): a merge of
ten thousand participations is a few statements, not ten thousand.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pghistory.trigger
import pgtrigger
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef
from django.db.models.fields.related import ForeignObjectRel
from django.db.models.lookups import IsNull

from ledger import registry
from ledger.bulk import recorded
from ledger.models import Change, ChangeAction, Mergeable
from ledger.triggers import ChangeLog, Revision, TouchesParent, quote_name, touched

# The write's history context, attached as pghistory's own triggers attach it.
CONTEXT = "_pgh_attach_context()"


class MergeConflict(Exception):
    """The merge cannot be made as asked; the message says why."""


def lock_pair(model: type[Mergeable], first: int, second: int) -> tuple[Any, Any]:
    """Both rows (None for one that does not exist), locked in the order of
    their ids: two merges of the same pair made crosswise at the same moment
    queue behind each other instead of deadlocking, and the second sees what
    the first did."""
    locked = model._default_manager.select_for_update().filter(pk__in={first, second})
    rows = {row.pk: row for row in locked.order_by("pk")}
    return rows.get(first), rows.get(second)


def _references(model: type[models.Model]) -> list[ForeignObjectRel]:
    """The foreign keys of the data's rows (the registry's resources and child
    rows) to `model`, its own `merged_into` aside. Snapshots stay with the
    record whose history they are."""
    data = set(registry.data_models())
    return [
        relation
        for relation in model._meta.related_objects
        if (relation.one_to_many or relation.one_to_one)
        and relation.related_model in data
        and not (relation.related_model is model and relation.field.name == "merged_into")
    ]


def _unique_with(model: type[models.Model], name: str) -> list[tuple[tuple[str, ...], bool]]:
    """For each unique set of `model`'s fields that holds `name`, the others,
    and whether two NULLs count as equal in it (`nulls_distinct=False`)."""
    sets = [
        (tuple(constraint.fields), constraint.nulls_distinct is False)
        for constraint in model._meta.total_unique_constraints
    ]
    sets += [(tuple(fields), False) for fields in model._meta.unique_together]
    return [
        (tuple(f for f in fields if f != name), nulls_equal)
        for fields, nulls_equal in sets
        if name in fields
    ]


def _refuse(record: Any, into: Any, check: Callable[[Any, Any], None] | None) -> None:
    """Raise MergeConflict if `record` cannot be merged into `into`."""
    if record.pk == into.pk:
        raise MergeConflict("A record cannot be merged into itself.")
    if record.merged_into_id is not None:
        raise MergeConflict(f"This record is already merged into {record.merged_into_id}.")
    if into.merged_into_id is not None:
        raise MergeConflict(
            f"{into.pk} is itself merged into {into.merged_into_id}: merge into that one."
        )
    if check is not None:
        check(record, into)


def _moves(record: Any, into: Any) -> Iterator[tuple[str, Any, str, models.QuerySet, models.Q]]:
    """For each foreign key to `record`'s model: its key in the merge record
    (`events.EventParticipant.actor`), the model holding it, its name, the rows
    referring to `record`, and the condition that picks those among them the
    target already has the like of (dropped rather than moved)."""
    for relation in _references(type(record)):
        related, name = relation.related_model, relation.field.name
        rows = related._default_manager.filter(**{name: record})
        repeats = models.Q(pk__in=[])
        for others, nulls_equal in _unique_with(related, name):
            # A row the target already has the like of: the same values of
            # the rest of a unique set (NULL the like of NULL where the
            # constraint says so).
            same = models.Q()
            for other in others:
                equal = models.Q(**{other: OuterRef(other)})
                if nulls_equal:
                    equal |= models.Q(**{f"{other}__isnull": True}) & models.Q(
                        IsNull(OuterRef(other), True)
                    )
                same &= equal
            twin = related._default_manager.filter(same, **{name: into})
            repeats |= models.Q(Exists(twin))
        yield f"{related._meta.label}.{name}", related, name, rows, repeats


def _refuse_dropping(related: type[models.Model], name: str, ids: list[int]) -> None:
    """A row the target has the like of is dropped only if it is a child row
    (a participation, a statement link, an alias): a resource (an affiliation)
    has evidence and a history of its own, which dropping it would lose."""
    if ids and registry.for_model(related) is not None:
        noun = related._meta.verbose_name
        raise MergeConflict(
            f"Both records have the same {noun} as {name} (the merged one's: "
            f"{', '.join(str(pk) for pk in ids)}): a {noun} is a record of its own, with its "
            f"evidence, and a merge does not delete it. Delete or change one of them first."
        )


def preview(
    record: Any, into: Any, *, check: Callable[[Any, Any], None] | None = None
) -> dict[str, Any]:
    """What `merge(record, into, check=check)` would do now, without doing it:
    under `moved`, by the merge record's keys, the ids of the rows that would
    move and of those that would be dropped; `repointed`, the records merged
    into `record` before; `refused`, why the merge would be refused (None if
    it would not be). Nothing is locked: the merge itself may find more."""
    try:
        _refuse(record, into, check)
        refused = None
    except MergeConflict as exc:
        refused = str(exc)
    moved: dict[str, Any] = {}
    if record.pk != into.pk:
        for key, related, name, rows, repeats in _moves(record, into):
            dropped = list(rows.filter(repeats).order_by("pk").values_list("pk", flat=True))
            if refused is None:
                try:
                    _refuse_dropping(related, name, dropped)
                except MergeConflict as exc:
                    refused = str(exc)
            ids = list(rows.exclude(repeats).order_by("pk").values_list("pk", flat=True))
            if ids or dropped:
                moved[key] = {"moved": ids, "dropped": dropped}
    repointed = list(
        type(record)._default_manager.filter(merged_into=record).values_list("pk", flat=True)
    )
    return {"into": into.pk, "moved": moved, "repointed": repointed, "refused": refused}


def relation_names(model: type[models.Model]) -> dict[str, str]:
    """The merge record's keys (`events.EventParticipant.actor`) of `model`,
    each with the name the model knows it by (`participations`)."""
    return {
        f"{r.related_model._meta.label}.{r.field.name}": r.get_accessor_name() or r.name
        for r in model._meta.related_objects
    }


@transaction.atomic
# Records are typed Any: the abstract model's foreign key to itself gives
# django-stubs no `merged_into_id`.
def merge(
    record: Any,
    into: Any,
    *,
    check: Callable[[Any, Any], None] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge `record` into `into` (both locked by the caller: lock_pair) and
    return what moved, as kept in `record.merge`. `check(record, into)` raises
    MergeConflict for what the domain refuses to merge."""
    model = type(record)
    _refuse(record, into, check)
    moved: dict[str, Any] = {}
    for key, related, name, rows, repeats in _moves(record, into):
        dropped = [_as_dict(row) for row in rows.filter(repeats).order_by("pk")]
        _refuse_dropping(related, name, [row["id"] for row in dropped])
        if dropped:
            related._default_manager.filter(pk__in=[d["id"] for d in dropped]).delete()
        ids = list(rows.order_by("pk").values_list("pk", flat=True))
        if ids:
            _move(related, name, ids, into.pk, record.pk)
        if ids or dropped:
            moved[key] = {"moved": ids, "dropped": dropped}
    repointed = list(model._default_manager.filter(merged_into=record).values_list("pk", flat=True))
    model._default_manager.filter(pk__in=repointed).update(merged_into=into)
    record.merged_into = into
    record.merge = {"into": into.pk, "moved": moved, "repointed": repointed, **(extra or {})}
    record.save(update_fields=["merged_into", "merge"])
    _mark_feed_entry(record, ChangeAction.MERGE)
    return record.merge


@transaction.atomic
def unmerge(record: Any) -> dict[str, Any]:
    """Undo `record`'s merge (the record locked by the caller): the rows it
    moved come back to it, wherever they are now; the rows it dropped are made
    again (with new ids) unless one like them exists by now; records it
    re-pointed at the target point at `record` again. Returns the merge undone."""
    if record.merged_into_id is None or not record.merge:
        raise MergeConflict("This record is not merged.")
    done = record.merge
    target = record.merged_into_id
    # Rows the domain made for the merge (the merged actor's name as an alias).
    for label, pks in done.get("created", {}).items():
        apps.get_model(label)._default_manager.filter(pk__in=pks).delete()
    for key, entry in done["moved"].items():
        label, name = key.rsplit(".", 1)
        related = apps.get_model(label)
        _move(related, name, entry["moved"], record.pk, target)
        for values in entry["dropped"]:
            row = related(
                **{
                    field.attname: field.to_python(values[field.attname])
                    for field in related._meta.concrete_fields
                    if field.attname in values and not field.primary_key
                }
            )
            try:
                row.validate_constraints()
            except ValidationError:
                continue  # one like it was made since: that one stands
            row.save()
    type(record)._default_manager.filter(
        pk__in=done.get("repointed", []), merged_into=target
    ).update(merged_into=record)
    record.merged_into = None
    record.merge = None
    record.save(update_fields=["merged_into", "merge"])
    return done


def _move(related: type[models.Model], name: str, ids: list[int], to: int, away: int) -> None:
    """Point the rows `ids` of `related` at record `to` (their foreign key
    `name`) and do what their row triggers and their parents' would do, for
    all of them at once, with those triggers ignored: one statement moves the
    rows and writes their `update` snapshots (ledger.bulk.recorded), and one
    per parent table gives each parent they touch (TouchesParent) its
    revision, snapshot and feed entry (`_touch`). Row by row, ten thousand
    moved participations were ten thousand UPDATEs of their events, each
    with its triggers."""
    declared = _declared(related)
    touching = [t for t in declared if isinstance(t, TouchesParent)]
    recorder = _recorder(related)
    table = quote_name(related._meta.db_table)
    update = f"UPDATE {table} SET {_column(related, name)} = %s WHERE id = ANY(%s)"
    if recorder is not None:
        update = recorded(update, related, label="update", context=CONTEXT)
    with _ignoring(related, [*touching, recorder]), connection.cursor() as cursor:
        cursor.execute(update, [to, ids])
    for trigger in touching:
        for fk in trigger.fks:
            parent = related._meta.get_field(fk).related_model
            if fk == name:
                parents = {to, away}  # the key that moved: both records changed
            else:
                with connection.cursor() as cursor:
                    column = _column(related, fk)
                    cursor.execute(
                        f"SELECT DISTINCT {column} FROM {table} "
                        f"WHERE id = ANY(%s) AND {column} IS NOT NULL",
                        [ids],
                    )
                    parents = {parent_id for (parent_id,) in cursor.fetchall()}
            if parents and parent is not None and not isinstance(parent, str):
                _touch(parent, sorted(parents))


def _touch(model: type[models.Model], ids: list[int]) -> None:
    """What the TouchesParent of a moved row does to its parent, for the
    parents `ids` (rows of `model`) at once: each gains one revision in this
    transaction (`touched`, the rule of `Revision` for a touched row), with
    its `update` snapshot in the merge's context and its feed entry, in one
    statement; the parent's own triggers for those (`Revision`, `ChangeLog`,
    the snapshot) are ignored for it, so that none of them runs per row."""
    declared = _declared(model)
    feed = [t for t in declared if isinstance(t, ChangeLog)]
    own = [t for t in declared if isinstance(t, Revision)] + feed + [_recorder(model)]
    resource = feed[0].resource if feed else None
    query = recorded(touched(model), model, label="update", context=CONTEXT, resource=resource)
    with _ignoring(model, own), connection.cursor() as cursor:
        cursor.execute(query, [ids])


def _column(model: type[models.Model], name: str) -> str:
    """The column of `model`'s field `name`, as an SQL identifier."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise ValueError(f"{model._meta.label}.{name} has no column.")
    return quote_name(field.column)


def _declared(model: type[models.Model]) -> list[Any]:
    """The triggers declared on `model` (django-pgtrigger's Meta option;
    pghistory adds its own there)."""
    return list(getattr(model._meta, "triggers", []))


def _recorder(model: type[models.Model]) -> Any:
    """The pghistory trigger writing `model`'s `update` snapshots, if any."""
    return next(
        (
            t
            for t in _declared(model)
            if isinstance(t, pghistory.trigger.Event) and t.label == "update"
        ),
        None,
    )


def _ignoring(model: type[models.Model], triggers: list[Any]) -> AbstractContextManager:
    """pgtrigger.ignore of `triggers` of `model` (None skipped). Of none,
    nothing: pgtrigger.ignore() with no name would ignore every trigger."""
    uris = [f"{model._meta.label}:{t.name}" for t in triggers if t is not None]
    return pgtrigger.ignore(*uris) if uris else nullcontext()


def _as_dict(row: models.Model) -> dict[str, Any]:
    """A row's concrete fields by attribute name (`actor_id`), as JSON holds them."""
    values = {field.attname: field.value_from_object(row) for field in row._meta.concrete_fields}
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def _mark_feed_entry(record: Any, action: str) -> None:
    """The merged record's feed entry of this transaction says `action`."""
    resource = registry.for_model(type(record))
    if resource is None:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")
        (txid,) = cursor.fetchone()
    Change.objects.filter(txid=txid, resource=resource.name, object_id=record.pk).update(
        action=action
    )
