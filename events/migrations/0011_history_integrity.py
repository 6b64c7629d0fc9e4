"""History that holds at every revision, and a feed that never stalls.

- A write that changes nothing changes nothing: `el_revision` keeps the row's
  `updated_at` when no other column changed, so pghistory (which snapshots an
  update only when a tracked column changed) records no snapshot and the feed
  no entry.
- A delete is one revision, numbered alike in history and feed: the next
  number, or the number the deleting transaction already gave the record
  (deleting its child rows first counts as a change of it). The transaction's
  earlier feed entries for the record are replaced by the one delete entry.
- The feed is ordered by commit: `commit_seq` is taken, under an advisory
  lock held until the transaction ends, by a deferred trigger that runs as the
  transaction commits. A reader that sees an entry therefore also sees every
  entry with a smaller `commit_seq`, and no running transaction, however long,
  holds later commits back.
"""

import django.db.models.deletion
from django.db import migrations, models

# The advisory lock that orders commits in the feed ("el_feed" as a number).
FEED_LOCK = 0x656C5F66656564

REVISION = r"""
CREATE OR REPLACE FUNCTION el_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx bigint := txid_current();
    ignored text[] := ARRAY['revision', 'revised_tx', 'updated_at', 'date_sort', 'search_vector'];
BEGIN
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
END $$;
"""

LOG_CHANGE = r"""
CREATE OR REPLACE FUNCTION el_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tx bigint := txid_current();
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)
        VALUES (TG_ARGV[0], NEW.id, 'create', NEW.revision, tx, now());
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.revision <> OLD.revision THEN
            INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)
            VALUES (TG_ARGV[0], NEW.id, 'update', NEW.revision, tx, now());
        END IF;
    ELSE
        -- One revision, one entry: what this transaction logged of the record
        -- before deleting it is folded into the delete.
        DELETE FROM events_change
        WHERE txid = tx AND resource = TG_ARGV[0] AND object_id = OLD.id;
        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)
        VALUES (
            TG_ARGV[0], OLD.id, 'delete',
            CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END,
            tx, now()
        );
    END IF;
    RETURN NULL;
END $$;
"""

COMMIT_ORDER = rf"""
CREATE SEQUENCE events_change_commit_seq;

-- The commit sequence number of the current transaction, taken on first use
-- under the feed lock (held until the transaction ends).
CREATE FUNCTION el_feed_commit_seq() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cached text := current_setting('el.feed_commit_seq', true);
    tx text := txid_current()::text;
    seq bigint;
BEGIN
    IF cached IS NOT NULL AND split_part(cached, ':', 1) = tx THEN
        RETURN split_part(cached, ':', 2)::bigint;
    END IF;
    PERFORM pg_advisory_xact_lock({FEED_LOCK});
    seq := nextval('events_change_commit_seq');
    PERFORM set_config('el.feed_commit_seq', tx || ':' || seq, true);
    RETURN seq;
END $$;

CREATE FUNCTION el_change_commit_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events_change SET commit_seq = el_feed_commit_seq()
    WHERE id = NEW.id AND commit_seq IS NULL;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER el_change_commit_seq AFTER INSERT ON events_change
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION el_change_commit_seq();

-- Entries written before: in the order the feed gave them.
UPDATE events_change c SET commit_seq = o.seq
FROM (SELECT txid, dense_rank() OVER (ORDER BY txid) AS seq FROM events_change GROUP BY txid) o
WHERE c.txid = o.txid;
SELECT setval('events_change_commit_seq', coalesce(max(commit_seq), 0) + 1, false)
FROM events_change;
"""

UNDO_COMMIT_ORDER = """
DROP TRIGGER el_change_commit_seq ON events_change;
DROP FUNCTION el_change_commit_seq();
DROP FUNCTION el_feed_commit_seq();
DROP SEQUENCE events_change_commit_seq;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0010_evidence_search_vector"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="change",
            options={"ordering": ["commit_seq", "id"]},
        ),
        migrations.RemoveIndex(
            model_name="change",
            name="events_change_position",
        ),
        migrations.RemoveIndex(
            model_name="change",
            name="events_change_resource",
        ),
        migrations.AddField(
            model_name="change",
            name="commit_seq",
            field=models.BigIntegerField(editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="statementevent",
            name="event",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="statement_links",
                to="events.event",
            ),
        ),
        migrations.AddIndex(
            model_name="change",
            index=models.Index(fields=["commit_seq", "id"], name="events_change_commit_order"),
        ),
        migrations.AddIndex(
            model_name="change",
            index=models.Index(
                fields=["resource", "commit_seq", "id"], name="events_change_resource_order"
            ),
        ),
        migrations.AddIndex(
            model_name="change",
            index=models.Index(fields=["txid"], name="events_change_tx"),
        ),
        # The functions of 0006 and 0007 are replaced; going back keeps the new ones.
        migrations.RunSQL(REVISION, migrations.RunSQL.noop),
        migrations.RunSQL(LOG_CHANGE, migrations.RunSQL.noop),
        migrations.RunSQL(COMMIT_ORDER, UNDO_COMMIT_ORDER),
    ]
