"""Helpers every resource's services share."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils.text import slugify

from ledger.models import Revisioned

Row = TypeVar("Row", bound=models.Model)

# The child rows held by rows_written_together(), by model, in order.
_HELD: ContextVar[dict[type[models.Model], list[models.Model]] | None] = ContextVar(
    "rows_written_together", default=None
)


@contextmanager
def rows_written_together() -> Iterator[None]:
    """Inside the block, the child rows services add (`rows_insert`) are held
    and inserted as it ends, one statement per model for all of them, not
    one per record: checked as ever before they are held, and by the
    database as they are inserted. Nothing in the block may read them back,
    and a refusal comes at its end: for a batch tried whole, whose caller
    rolls the whole try back at any error and then redoes it item by item
    (events.documents.import_document). Not inserted if the block fails."""
    held: dict[type[models.Model], list[models.Model]] = {}
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
    for model, rows in held.items():
        model._default_manager.bulk_create(rows)


def rows_insert(model: type[Row], rows: Sequence[Row]) -> list[Row]:
    """Insert `rows` of `model` in one statement (bulk_create), or inside
    `rows_written_together()` as it ends: then they are returned without ids."""
    held = _HELD.get()
    if held is None:
        return model._default_manager.bulk_create(rows)
    held.setdefault(model, []).extend(rows)
    return list(rows)


@contextmanager
def without_savepoints(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Inside the block, the atomic blocks nested in the current transaction
    make no savepoint: an error in one of them marks the transaction as
    failed (Django's rule for `atomic(savepoint=False)`), so that the caller,
    in a savepoint of its own made before the block, must roll the whole block
    back. For a batch tried whole first and, on any error, redone item by
    item: a savepoint costs two round trips, and past 64 in a transaction
    PostgreSQL's visibility checks slow down."""
    connection = connections[using]
    assert connection.in_atomic_block, "without_savepoints() needs a transaction to fail"
    features = connection.features
    before = features.uses_savepoints
    features.uses_savepoints = False  # what Atomic asks (connection.savepoint())
    try:
        yield
    finally:
        features.uses_savepoints = before


class ConflictError(Exception):
    """The change would contradict stored data (the API answers 409)."""


def model_update(*, instance: Revisioned, fields: dict[str, Any]) -> bool:
    """Set `fields` on the stored `instance`, validate it, and save the
    fields that changed, by name. Fields already at their values are left
    out, and a record none of whose fields change is not saved: a write that
    changes nothing records nothing. Returns whether it saved.

    Validation is `full_clean`'s, told what changed, so that it checks only
    the constraints the change can break (the stored record met them all).
    The save names the changed fields and the `auto_now` ones (`updated_at`);
    the revision trigger sets `revision` itself, and the database the
    generated columns."""
    changed = {name: value for name, value in fields.items() if getattr(instance, name) != value}
    if not changed:
        return False
    for name, value in changed.items():
        setattr(instance, name, value)
    instance.full_clean(changed=set(changed))
    touched = [
        field.name
        for field in instance._meta.concrete_fields
        if isinstance(field, models.DateField) and field.auto_now
    ]
    instance.save(update_fields=[*changed, *touched])
    return True


def unique_slug(model: type[models.Model], text: str, *, max_length: int = 100) -> str:
    """A slug made from `text` that no row of `model` has: `armenia`, then
    `armenia-2`, ... (the unique constraint settles a race). Never digits
    alone, which would read as an id: `1991` becomes `actor-1991`."""
    name = model._meta.model_name or "record"
    base = slugify(text)[: max_length - 6].strip("-") or name
    if base.isdigit():
        base = f"{name}-{base}"[: max_length - 6]
    slug, number = base, 1
    while model._default_manager.filter(slug=slug).exists():
        number += 1
        slug = f"{base}-{number}"
    return slug
