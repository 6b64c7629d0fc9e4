"""The triggers every versioned resource shares, declared on its model with
django-pgtrigger (`Meta.triggers`), so that `makemigrations` tracks them:

- `Revision()` numbers the revisions of a resource (`Revisioned`);
- `ChangeLog(resource=...)` writes its entries of the change feed;
- `TouchesParent("fk", ...)` makes a change of a child row (participant,
  evidence, alias, ...) a change of the resource it belongs to;
- `CommitSeq()` (on `Change`) orders the feed by commit.

`touched(model)` is what TouchesParent and `Revision` make of many parents
at once, for a writer that ignores the parents' row triggers and writes the
revisions' snapshots and feed entries itself (ledger/merging.py, with
ledger.bulk.recorded).

Each is a trigger per table with a function of its own
(`pgtrigger_<name>_<hash of app.Model:name>`). The bodies are those of the
shared functions they replace (el_revision, el_log_change, el_touch_parent,
el_change_commit_seq, as events/migrations/0006, 0007 and 0011 last defined
them), except that what was an argument (TG_ARGV: the resource's name, the
parent's column and table) is written into the body, so the statements the
arguments built with format() and EXECUTE are plain SQL. `el_feed_commit_seq()`,
which `CommitSeq` and the bulk loader (ledger/bulk.py) both call, stays a
plain function, created by events/migrations/0011_history_integrity.py;
`el_feed_numbering_queued()`, the condition of `CommitSeq`, is created by
ledger/migrations/0004_feed_numbered_once_per_transaction.py.

Why the names are what they are: PostgreSQL fires the triggers of one table
that share a timing (BEFORE, AFTER) in the alphabetical order of their
names, and pgtrigger names each `pgtrigger_<name>_<hash>`. The order is
part of the behaviour:

- BEFORE: `revision` sorts before `source_guard` (sources.Source), so the
  revision compares the row as written, before the guard sets its digest;
- AFTER: `change_log` and `child_touches_parent` sort before the history
  snapshots of pghistory (`delete_delete`, `insert_insert`,
  `update_update`), as the feed and the parent's revision were written
  before the snapshot when these were el_log_change and el_touch_parent.

Renaming one of them can change that order; tests/ledger/test_triggers.py
checks it.

A trigger function of pgtrigger first asks `_pgtrigger_should_ignore()`
whether `pgtrigger.ignore()` switched it off for the session; the bulk
loader does not use that, it switches every row trigger off at once
(`session_replication_role = replica`) and does their work set-based.
"""

import re

import pgtrigger
from django.db import models


def quote_name(name: str) -> str:
    """A column or table name as an SQL identifier (plain names only)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL name.")
    return f'"{name}"'


class Revision(pgtrigger.Trigger):
    """A resource starts at revision 1 and gains one for every transaction
    that changes it or one of its child rows (several changes in one
    transaction make one revision); `revised_tx` holds that transaction. A
    write that changes nothing changes nothing, not even `updated_at`."""

    name = "revision"
    when = pgtrigger.Before
    operation = pgtrigger.Insert | pgtrigger.Update
    declare = [
        ("tx", "bigint := txid_current()"),
        (
            "ignored",
            "text[] := ARRAY['revision', 'revised_tx', 'updated_at', 'date_sort', 'search_vector']",
        ),
    ]
    func = """
    IF TG_OP = 'INSERT' THEN
        NEW.revision := 1;
        NEW.revised_tx := tx;
    ELSIF NEW.revised_tx = -1  -- touched by a child row
       OR (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN
        NEW.revision := CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END;
        NEW.revised_tx := tx;
    ELSE  -- nothing changed: nothing is recorded, not even the time
        NEW.revision := OLD.revision;
        NEW.revised_tx := OLD.revised_tx;
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
"""


CHANGE_LOG = """
    IF TG_OP = 'INSERT' THEN
        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)
        VALUES ({resource}, NEW.id, 'create', NEW.revision, tx, now());
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.revision <> OLD.revision THEN
            INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)
            VALUES ({resource}, NEW.id, 'update', NEW.revision, tx, now());
        END IF;
    ELSE
        -- One revision, one entry: what this transaction logged of the record
        -- before deleting it is folded into the delete.
        DELETE FROM events_change
        WHERE txid = tx AND resource = {resource} AND object_id = OLD.id;
        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)
        VALUES (
            {resource}, OLD.id, 'delete',
            CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END,
            tx, now()
        );
    END IF;
    RETURN NULL;
"""


class ChangeLog(pgtrigger.Trigger):
    """An entry of the change feed for every create, new revision and delete
    of a resource, under `resource`, its name in the feed and the API."""

    name = "change_log"
    when = pgtrigger.After
    operation = pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete
    declare = [("tx", "bigint := txid_current()")]

    def __init__(self, *, resource: str) -> None:
        if not re.fullmatch(r"[a-z_]+", resource):
            raise ValueError(f"A resource name is plain lower-case: {resource!r}.")
        self.resource = resource
        super().__init__(func=CHANGE_LOG.format(resource=f"'{resource}'"))


# For each parent: its id as the row was and as it is (a row may move from
# one parent to another), each parent touched once.
TOUCH_PARENT = """
    ids := ARRAY[]::bigint[];
    IF TG_OP <> 'DELETE' THEN
        ids := ids || NEW.{column};
    END IF;
    IF TG_OP <> 'INSERT' THEN
        ids := ids || OLD.{column};
    END IF;
    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP
        IF parent_id IS NOT NULL THEN
            UPDATE {parent} SET revised_tx = -1
            WHERE id = parent_id AND revised_tx <> txid_current();
        END IF;
    END LOOP;
"""


class TouchesParent(pgtrigger.Trigger):
    """A change of this row is a change of the resource each of `fks` (the
    names of its foreign keys) points at: the parent's `revised_tx` is set to
    -1, which its `Revision` trigger counts as a change (once per
    transaction), so the parent gains a revision and a feed entry."""

    name = "child_touches_parent"
    when = pgtrigger.After
    operation = pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete
    declare = [("parent_id", "bigint"), ("ids", "bigint[]")]

    def __init__(self, *fks: str) -> None:
        if not fks:
            raise ValueError("Name the foreign key of at least one parent.")
        self.fks = fks
        super().__init__()

    def get_func(self, model: models.Model) -> str:
        parts = []
        for name in self.fks:
            field = model._meta.get_field(name)
            parent = field.related_model
            if not isinstance(field, models.ForeignKey) or parent is None:
                raise ValueError(f"{model._meta.label}.{name} is not a foreign key.")
            parts.append(
                TOUCH_PARENT.format(
                    column=quote_name(field.column),
                    parent=quote_name(parent._meta.db_table),
                )
            )
        return "".join(parts) + "    RETURN NULL;\n"


def touched(model: type[models.Model]) -> str:
    """What TouchesParent and `Revision` make of many parents at once, as one
    UPDATE of `model`'s table: each row whose id is in the array parameter
    gains a revision in this transaction, once (a row this transaction
    revised already keeps its number, as `Revision` keeps it), and nothing
    else changes, not even `updated_at`. For a writer that ignores the
    parent's row triggers for this statement and writes the revisions'
    snapshots and feed entries itself (ledger.bulk.recorded)."""
    return (
        f"UPDATE {quote_name(model._meta.db_table)} "
        "SET revision = revision + 1, revised_tx = txid_current() "
        "WHERE id = ANY(%s) AND revised_tx <> txid_current()"
    )


class CommitSeq(pgtrigger.Trigger):
    """Gives each new change-feed entry the commit sequence number of its
    transaction, taken as the transaction commits (deferred) under the feed's
    lock, held until the commit ends: a reader that sees an entry also sees
    every entry with a smaller `commit_seq`.

    Only the first entry a transaction writes queues it (the condition,
    `el_feed_numbering_queued()`, evaluated as the row is written), and it
    numbers every entry of the transaction (`txid`) in one UPDATE: a merge
    that touches ten thousand records pays one trigger call at the commit,
    not ten thousand. Firing early (`SET CONSTRAINTS ... IMMEDIATE`) lets
    the next entry queue it again; a savepoint rolled back forgets both the
    queued call and the mark, together."""

    name = "commit_seq"
    when = pgtrigger.After
    operation = pgtrigger.Insert
    timing = pgtrigger.Deferred
    condition = pgtrigger.Condition("el_feed_numbering_queued()")
    func = """
    PERFORM set_config('el.feed_numbering_queued', '', true);
    UPDATE events_change SET commit_seq = (SELECT el_feed_commit_seq())
    WHERE txid = txid_current() AND commit_seq IS NULL;
    RETURN NULL;
"""
