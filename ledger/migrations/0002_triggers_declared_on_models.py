"""The trigger that orders the change feed by commit is declared on Change
(django-pgtrigger, `Meta.triggers`): installed here, and the hand-written
one it replaces (events/migrations/0011) dropped with its function, in this
one transaction. el_feed_commit_seq(), which the new trigger and the bulk
loader call, stays as 0011 made it."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations

DROP_HANDWRITTEN = """
DROP TRIGGER el_change_commit_seq ON events_change;
DROP FUNCTION el_change_commit_seq();
"""

# Going back: the trigger as it was (events/migrations/0011).
RESTORE_HANDWRITTEN = """
CREATE FUNCTION el_change_commit_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events_change SET commit_seq = el_feed_commit_seq()
    WHERE id = NEW.id AND commit_seq IS NULL;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER el_change_commit_seq AFTER INSERT ON events_change
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION el_change_commit_seq();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0001_initial"),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name="change",
            trigger=pgtrigger.compiler.Trigger(
                name="commit_seq",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    constraint="CONSTRAINT",
                    func="\n    UPDATE events_change SET commit_seq = el_feed_commit_seq()\n    WHERE id = NEW.id AND commit_seq IS NULL;\n    RETURN NULL;\n",
                    hash="cc1ee292a01dd99c1e08c22ca7f98dffe9297888",
                    operation="INSERT",
                    pgid="pgtrigger_commit_seq_f99bb",
                    table="events_change",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RunSQL(DROP_HANDWRITTEN, RESTORE_HANDWRITTEN),
    ]
