"""The triggers are the ones the models declare (django-pgtrigger), installed
as declared, with none beside them, and fired in the order they were."""

import re

import pgtrigger
import pytest
from django.apps import apps
from django.db import connection

from ledger import registry
from ledger.models import Revisioned
from ledger.triggers import ChangeLog, Revision, TouchesParent

pytestmark = pytest.mark.django_db

APPS = ("ledger", "sources", "actors", "events")


def application_tables() -> set[str]:
    """The tables of the application's models, their snapshot tables included."""
    return {
        model._meta.db_table
        for label in APPS
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed and not model._meta.proxy
    }


def installed_triggers() -> list[tuple[str, str, bool, bool]]:
    """(table, trigger, fires before the row is written, is a constraint
    trigger) for every trigger on the application's tables, in firing order
    (PostgreSQL fires the triggers of one timing by name)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname, (t.tgtype & 2) <> 0, t.tgconstraint <> 0 "
            "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT t.tgisinternal AND n.nspname = 'public' AND c.relname = ANY(%s) "
            "ORDER BY c.relname, t.tgname",
            [sorted(application_tables())],
        )
        return cursor.fetchall()


def declared(model) -> list:
    return [trigger for m, trigger in pgtrigger.registered() if m is model]


def test_the_declared_triggers_are_installed_as_declared():
    statuses = {
        trigger.get_uri(model): trigger.get_installation_status(model)
        for model, trigger in pgtrigger.registered()
    }
    assert statuses
    assert {uri for uri, status in statuses.items() if status != ("INSTALLED", True)} == set()
    assert pgtrigger.prunable() == []


def test_no_trigger_on_the_application_tables_is_outside_pgtrigger():
    expected = {
        (model._meta.db_table, trigger.get_pgid(model))
        for model, trigger in pgtrigger.registered()
        if model._meta.db_table in application_tables()
    }
    installed = {(table, name) for table, name, _, _ in installed_triggers()}
    assert installed == expected
    # The hand-written functions they replaced are gone; the feed's commit
    # sequence, which the bulk loader also calls, stays, and CommitSeq's condition;
    # the stored PLOVER records' builder and refresh (events/migrations/0021).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname FROM pg_proc WHERE proname ~ '^(el|events|actors)_' ORDER BY 1"
        )
        assert [name for (name,) in cursor.fetchall()] == [
            "el_feed_commit_seq",
            "el_feed_numbering_queued",
            "el_plover_records",
            "el_plover_refresh",
            "el_plover_refresh_queued",
            "el_plover_store",
        ]


def test_every_resource_declares_its_revision_and_feed_triggers():
    for resource in registry.resources():
        triggers = declared(resource.model)
        assert [t.name for t in triggers if isinstance(t, Revision)] == ["revision"]
        assert [t.resource for t in triggers if isinstance(t, ChangeLog)] == [resource.name]
        for child in resource.children:
            columns = {
                child.model._meta.get_field(fk).column
                for trigger in declared(child.model)
                if isinstance(trigger, TouchesParent)
                for fk in trigger.fks
            }
            assert child.fk in columns, (resource.name, child.name)


def test_every_revisioned_model_is_a_resource():
    revisioned = {model for model in apps.get_models() if issubclass(model, Revisioned)}
    assert revisioned == {resource.model for resource in registry.resources()}


def test_the_triggers_fire_in_the_order_they_did():
    """Before the row is written, its revision is numbered first (then, for a
    source, the guard sets the digest); after it, the feed entry and the
    parent's revision come before the history snapshot. (Statement-level
    triggers, which mark stored PLOVER records stale, fire after all of them,
    whatever their names.)"""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgtype & 1 = 0")
        statement_level = {name for (name,) in cursor.fetchall()}
    order: dict[tuple[str, bool], list[str]] = {}
    for table, name, before, constraint in installed_triggers():
        # Constraint triggers run at commit.
        if not constraint and name not in statement_level:
            # pgtrigger_<name>_<hash>
            order.setdefault((table, before), []).append(
                re.sub(r"^pgtrigger_|_[0-9a-f]{5}$", "", name)
            )
    assert order[("events_source", True)] == ["revision", "source_guard"]
    assert order[("events_evidence", True)] == ["check_quote"]
    for table in ("events_source", "events_event", "actors_affiliation"):
        assert order[(table, False)] == [
            "change_log",
            "delete_delete",
            "insert_insert",
            "update_update",
        ]
    for table in ("events_evidence", "events_eventparticipant", "actors_actoralias"):
        assert order[(table, False)] == [
            "child_touches_parent",
            "delete_delete",
            "insert_insert",
            "update_update",
        ]


def test_a_transaction_s_feed_entries_are_numbered_together_however_often_it_checks(
    immediate_constraints,
):
    """CommitSeq is queued by the first feed entry a transaction writes and
    numbers all its entries at once; once it ran (at the commit, or here as
    constraints are checked at once), the next entry queues it again, and a
    savepoint rolled back forgets the call it queued and its mark together."""
    from django.db import transaction

    from events.services import place_create
    from ledger.models import Change

    def entries() -> list:
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            (txid,) = cursor.fetchone()
        return list(Change.objects.filter(txid=txid).order_by("pk").values_list("commit_seq"))

    for n in range(3):
        place_create(name=f"First {n}", kind="city")
    assert entries() == [(None,)] * 3  # numbered at the commit, not before
    immediate_constraints()
    [(seq,)] = set(entries())
    assert seq is not None
    with pytest.raises(RuntimeError), transaction.atomic():
        place_create(name="Rolled back", kind="city")  # queues the numbering, marks it
        raise RuntimeError
    place_create(name="After the rollback", kind="city")  # so this one queues it again
    assert entries()[-1] == (None,)
    immediate_constraints()
    assert entries() == [(seq,)] * 4  # one transaction, one place in the feed
