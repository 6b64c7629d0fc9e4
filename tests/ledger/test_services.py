"""model_update: a change saved by name, validated as a change."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import Event
from ledger.services import model_update
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def updates(captured) -> list[str]:
    return [q["sql"] for q in captured if q["sql"].startswith("UPDATE")]


def test_only_the_changed_fields_and_updated_at_are_written():
    event = Event.objects.get(pk=EventFactory(summary="old").pk)
    updated_at = event.updated_at
    with CaptureQueriesContext(connection) as captured:
        assert model_update(instance=event, fields={"summary": "new", "title": event.title})
    (update,) = updates(captured)
    assert update.startswith('UPDATE "events_event" SET "summary" = ')
    assert '"updated_at" = ' in update
    assert '"title"' not in update and '"revision"' not in update
    stored = Event.objects.get(pk=event.pk)
    assert (stored.summary, stored.updated_at > updated_at) == ("new", True)
    snapshots = stored.snapshots.order_by("pgh_id")
    assert [(s.pgh_label, s.summary) for s in snapshots] == [("insert", "old"), ("update", "new")]


def test_a_change_to_nothing_saves_nothing():
    event = Event.objects.get(pk=EventFactory().pk)
    with CaptureQueriesContext(connection) as captured:
        assert not model_update(instance=event, fields={"title": event.title})
    assert len(captured) == 0


def test_constraints_are_checked_where_the_change_can_break_them():
    event = Event.objects.get(pk=EventFactory().pk)
    event.date_end = datetime.date(2000, 1, 1)  # before date_start, not saved
    event.validate_constraints(changed={"summary"})  # no constraint over the summary
    with pytest.raises(ValidationError, match="date_start must not be after date_end"):
        event.validate_constraints(changed={"date_end"})
    with pytest.raises(ValidationError, match="date_start must not be after date_end"):
        event.validate_constraints()


def test_field_and_constraint_errors_are_reported_together():
    event = Event.objects.get(pk=EventFactory().pk)
    with pytest.raises(ValidationError) as raised:
        model_update(
            instance=event, fields={"title": "x" * 301, "date_end": datetime.date(2000, 1, 1)}
        )
    assert set(raised.value.message_dict) == {"title", "__all__"}
    assert raised.value.message_dict["__all__"] == ["date_start must not be after date_end."]
    stored = Event.objects.get(pk=event.pk)
    assert stored.title != event.title and stored.date_end == datetime.date(2023, 11, 1)
