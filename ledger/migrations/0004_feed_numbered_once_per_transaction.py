"""The feed's commit sequence is given once per transaction: CommitSeq is
queued by the first entry a transaction writes only (its condition,
el_feed_numbering_queued(), created here) and numbers all the transaction's
entries in one UPDATE, instead of one call and one UPDATE per entry at the
commit (ledger/triggers.py). el_feed_commit_seq() (events/migrations/0011)
is unchanged."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations

# True for the first feed entry a transaction writes since its entries were
# last numbered (CommitSeq clears the mark when it runs); set_config(..., true)
# is undone with the transaction, or with a savepoint rolled back, as the
# trigger call it queued is.
QUEUED = """
CREATE FUNCTION el_feed_numbering_queued() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    tx text := txid_current()::text;
BEGIN
    IF current_setting('el.feed_numbering_queued', true) = tx THEN
        RETURN false;
    END IF;
    PERFORM set_config('el.feed_numbering_queued', tx, true);
    RETURN true;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0003_change_action_merge"),
    ]

    operations = [
        migrations.RunSQL(QUEUED, "DROP FUNCTION el_feed_numbering_queued();"),
        pgtrigger.migrations.RemoveTrigger(
            model_name="change",
            name="commit_seq",
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="change",
            trigger=pgtrigger.compiler.Trigger(
                name="commit_seq",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (el_feed_numbering_queued())",
                    constraint="CONSTRAINT",
                    func="\n    PERFORM set_config('el.feed_numbering_queued', '', true);\n    UPDATE events_change SET commit_seq = (SELECT el_feed_commit_seq())\n    WHERE txid = txid_current() AND commit_seq IS NULL;\n    RETURN NULL;\n",
                    hash="b0697f9075c48c96150dad1dd708f25a0690fe3b",
                    operation="INSERT",
                    pgid="pgtrigger_commit_seq_f99bb",
                    table="events_change",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
    ]
