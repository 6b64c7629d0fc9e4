"""model_update: a change saved by name, validated as a change; what
full_clean() leaves to the database, and child rows written together."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from actors.models import Actor, ActorAlias, Affiliation
from events.models import Event
from ledger.models import checks_left_to_database
from ledger.services import model_update, rows_insert, rows_written_together
from tests.factories import ActorFactory, EventFactory

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


def test_constraints_left_to_the_database_cost_no_query_and_are_refused_at_the_write():
    taken = ActorFactory()
    actor = Actor(slug=taken.slug, name="Another", kind="country")
    with pytest.raises(ValidationError) as raised:
        actor.full_clean()
    assert set(raised.value.message_dict) == {"slug"}
    with checks_left_to_database(), CaptureQueriesContext(connection) as captured:
        actor.full_clean()  # the slug's uniqueness and the check constraints: not asked
    assert len(captured) == 0
    with pytest.raises(IntegrityError), transaction.atomic():
        actor.save()
    # Only inside the block.
    with pytest.raises(ValidationError):
        actor.full_clean()


def test_a_foreign_key_whose_record_is_in_hand_is_not_looked_up():
    armenia = ActorFactory()
    affiliation = Affiliation(member=armenia, organization=armenia, role="member")
    with CaptureQueriesContext(connection) as captured, pytest.raises(ValidationError) as raised:
        affiliation.full_clean()
    # Its constraints checked, and no lookup of the actor in hand.
    assert raised.value.messages == ["Constraint “actors_affiliation_not_self” is violated."]
    assert captured and not [q for q in captured if 'FROM "actors_actor"' in q["sql"]]
    # By id alone, the record is looked up, and a missing one reported.
    by_id = Affiliation(member_id=armenia.pk, organization_id=armenia.pk + 1000, role="member")
    with pytest.raises(ValidationError) as raised:
        by_id.full_clean()
    assert set(raised.value.message_dict) == {"organization"}


def test_rows_written_together_are_inserted_as_the_block_ends_in_one_statement():
    actor = ActorFactory()
    with CaptureQueriesContext(connection) as captured, rows_written_together():
        rows_insert(ActorAlias, [ActorAlias(actor=actor, name="A")])
        rows_insert(
            ActorAlias, [ActorAlias(actor=actor, name="B"), ActorAlias(actor=actor, name="C")]
        )
        assert not ActorAlias.objects.filter(actor=actor).exists()
    inserts = [q["sql"] for q in captured if 'INSERT INTO "actors_actoralias"' in q["sql"]]
    assert len(inserts) == 1
    assert list(actor.aliases.order_by("id").values_list("name", flat=True)) == ["A", "B", "C"]


def test_rows_held_by_a_failed_block_are_not_inserted():
    actor = ActorFactory()
    with pytest.raises(RuntimeError), rows_written_together():
        rows_insert(ActorAlias, [ActorAlias(actor=actor, name="A")])
        raise RuntimeError
    assert not actor.aliases.exists()
