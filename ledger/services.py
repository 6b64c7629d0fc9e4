"""Helpers every resource's services share."""

from ledger.models import Revisioned


class ConflictError(Exception):
    """The change would contradict stored data (the API answers 409)."""


def apply_fields(instance: Revisioned, fields: dict) -> bool:
    """Set `fields` on `instance`, validate it whole, and save it. A stored
    record whose values already are `fields` is left alone: a write that
    changes nothing records nothing. Returns whether it saved."""
    if instance.pk is not None:
        fields = {name: value for name, value in fields.items() if getattr(instance, name) != value}
        if not fields:
            return False
    for name, value in fields.items():
        setattr(instance, name, value)
    if instance.pk is not None:
        instance.changed_fields = set(fields)  # constraints over other fields still hold
    try:
        instance.full_clean()
    finally:
        instance.changed_fields = None
    instance.save()
    return True
