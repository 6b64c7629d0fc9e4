"""The triggers of sources and evidence are declared on their models
(django-pgtrigger, `Meta.triggers`): installed here, and the hand-written
ones they replace (events/migrations/0002, 0006, 0007, 0011) dropped, in this
one transaction, so no write goes unchecked in between. Their functions go
too, except el_revision(), el_log_change() and el_touch_parent(), which other
tables still use until events/migrations/0016 drops them."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations

DROP_HANDWRITTEN = """
DROP TRIGGER el_revision ON events_source;
DROP TRIGGER el_log_change ON events_source;
DROP TRIGGER events_source_guard ON events_source;
DROP FUNCTION events_source_guard();
DROP TRIGGER events_evidence_check_quote ON events_evidence;
DROP FUNCTION events_evidence_check_quote();
DROP TRIGGER el_touch_parent ON events_evidence;
DROP TRIGGER events_evidence_keeps_record_cited ON events_evidence;
DROP FUNCTION events_evidence_keeps_record_cited();
"""

# Going back: the triggers and functions as they were (events/migrations/0002).
RESTORE_HANDWRITTEN = r"""
CREATE FUNCTION events_source_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.text IS DISTINCT FROM OLD.text
       AND EXISTS (SELECT 1 FROM events_evidence WHERE source_id = OLD.id) THEN
        RAISE EXCEPTION 'The text of source % cannot change: evidence spans point into it.', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    NEW.sha256 := encode(sha256(convert_to(NEW.text, 'UTF8')), 'hex');
    RETURN NEW;
END $$;

CREATE FUNCTION events_evidence_check_quote() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    actual text;
BEGIN
    SELECT substr(s.text, NEW.start + 1, NEW."end" - NEW.start) INTO actual
      FROM events_source s WHERE s.id = NEW.source_id;
    IF actual IS DISTINCT FROM NEW.quote OR char_length(NEW.quote) <> NEW."end" - NEW.start THEN
        RAISE EXCEPTION 'Evidence quote is not the text of source % at [%:%].',
            NEW.source_id, NEW.start, NEW."end"
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION events_evidence_keeps_record_cited() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.event_id IS NOT NULL
       AND EXISTS (SELECT 1 FROM events_event WHERE id = OLD.event_id)
       AND NOT EXISTS (SELECT 1 FROM events_evidence WHERE event_id = OLD.event_id) THEN
        RAISE EXCEPTION 'events_event % would cite no evidence.', OLD.event_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.statement_id IS NOT NULL
       AND EXISTS (SELECT 1 FROM events_statement WHERE id = OLD.statement_id)
       AND NOT EXISTS (SELECT 1 FROM events_evidence WHERE statement_id = OLD.statement_id) THEN
        RAISE EXCEPTION 'events_statement % would cite no evidence.', OLD.statement_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.affiliation_id IS NOT NULL
       AND EXISTS (SELECT 1 FROM actors_affiliation WHERE id = OLD.affiliation_id)
       AND NOT EXISTS (SELECT 1 FROM events_evidence WHERE affiliation_id = OLD.affiliation_id) THEN
        RAISE EXCEPTION 'actors_affiliation % would cite no evidence.', OLD.affiliation_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER el_revision BEFORE INSERT OR UPDATE ON events_source
    FOR EACH ROW EXECUTE FUNCTION el_revision();
CREATE TRIGGER el_log_change AFTER INSERT OR UPDATE OR DELETE ON events_source
    FOR EACH ROW EXECUTE FUNCTION el_log_change('sources');
CREATE TRIGGER events_source_guard BEFORE INSERT OR UPDATE ON events_source
    FOR EACH ROW EXECUTE FUNCTION events_source_guard();
CREATE TRIGGER events_evidence_check_quote
    BEFORE INSERT OR UPDATE OF source_id, start, "end", quote ON events_evidence
    FOR EACH ROW EXECUTE FUNCTION events_evidence_check_quote();
CREATE TRIGGER el_touch_parent AFTER INSERT OR UPDATE OR DELETE ON events_evidence
    FOR EACH ROW EXECUTE FUNCTION el_touch_parent(
        'event_id', 'events_event', 'statement_id', 'events_statement',
        'affiliation_id', 'actors_affiliation');
CREATE CONSTRAINT TRIGGER events_evidence_keeps_record_cited
    AFTER DELETE OR UPDATE OF event_id, statement_id, affiliation_id ON events_evidence
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_evidence_keeps_record_cited();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("sources", "0001_initial"),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name="evidence",
            trigger=pgtrigger.compiler.Trigger(
                name="check_quote",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE actual text;",
                    func='\n    SELECT substr(s.text, NEW.start + 1, NEW."end" - NEW.start) INTO actual\n      FROM events_source s WHERE s.id = NEW.source_id;\n    IF actual IS DISTINCT FROM NEW.quote OR char_length(NEW.quote) <> NEW."end" - NEW.start THEN\n        RAISE EXCEPTION \'Evidence quote is not the text of source % at [%:%].\',\n            NEW.source_id, NEW.start, NEW."end"\n            USING ERRCODE = \'check_violation\';\n    END IF;\n    RETURN NEW;\n',
                    hash="662484534997d7db251ee282918ca5d26a164b83",
                    operation='INSERT OR UPDATE OF "source_id", "start", "end", "quote"',
                    pgid="pgtrigger_check_quote_7d138",
                    table="events_evidence",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="evidence",
            trigger=pgtrigger.compiler.Trigger(
                name="child_touches_parent",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE parent_id bigint; ids bigint[];",
                    func='\n    ids := ARRAY[]::bigint[];\n    IF TG_OP <> \'DELETE\' THEN\n        ids := ids || NEW."event_id";\n    END IF;\n    IF TG_OP <> \'INSERT\' THEN\n        ids := ids || OLD."event_id";\n    END IF;\n    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP\n        IF parent_id IS NOT NULL THEN\n            UPDATE "events_event" SET revised_tx = -1\n            WHERE id = parent_id AND revised_tx <> txid_current();\n        END IF;\n    END LOOP;\n\n    ids := ARRAY[]::bigint[];\n    IF TG_OP <> \'DELETE\' THEN\n        ids := ids || NEW."statement_id";\n    END IF;\n    IF TG_OP <> \'INSERT\' THEN\n        ids := ids || OLD."statement_id";\n    END IF;\n    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP\n        IF parent_id IS NOT NULL THEN\n            UPDATE "events_statement" SET revised_tx = -1\n            WHERE id = parent_id AND revised_tx <> txid_current();\n        END IF;\n    END LOOP;\n\n    ids := ARRAY[]::bigint[];\n    IF TG_OP <> \'DELETE\' THEN\n        ids := ids || NEW."affiliation_id";\n    END IF;\n    IF TG_OP <> \'INSERT\' THEN\n        ids := ids || OLD."affiliation_id";\n    END IF;\n    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP\n        IF parent_id IS NOT NULL THEN\n            UPDATE "actors_affiliation" SET revised_tx = -1\n            WHERE id = parent_id AND revised_tx <> txid_current();\n        END IF;\n    END LOOP;\n    RETURN NULL;\n',
                    hash="b57dbfb02f134ffebe646e55d6639bff1bfd0b53",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_child_touches_parent_3c286",
                    table="events_evidence",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="evidence",
            trigger=pgtrigger.compiler.Trigger(
                name="keeps_record_cited",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    constraint="CONSTRAINT",
                    func="\n    IF OLD.event_id IS NOT NULL\n       AND EXISTS (SELECT 1 FROM events_event WHERE id = OLD.event_id)\n       AND NOT EXISTS (SELECT 1 FROM events_evidence WHERE event_id = OLD.event_id) THEN\n        RAISE EXCEPTION 'events_event % would cite no evidence.', OLD.event_id\n            USING ERRCODE = 'check_violation';\n    END IF;\n    IF OLD.statement_id IS NOT NULL\n       AND EXISTS (SELECT 1 FROM events_statement WHERE id = OLD.statement_id)\n       AND NOT EXISTS (SELECT 1 FROM events_evidence WHERE statement_id = OLD.statement_id) THEN\n        RAISE EXCEPTION 'events_statement % would cite no evidence.', OLD.statement_id\n            USING ERRCODE = 'check_violation';\n    END IF;\n    IF OLD.affiliation_id IS NOT NULL\n       AND EXISTS (SELECT 1 FROM actors_affiliation WHERE id = OLD.affiliation_id)\n       AND NOT EXISTS (SELECT 1 FROM events_evidence WHERE affiliation_id = OLD.affiliation_id) THEN\n        RAISE EXCEPTION 'actors_affiliation % would cite no evidence.', OLD.affiliation_id\n            USING ERRCODE = 'check_violation';\n    END IF;\n    RETURN NULL;\n",
                    hash="cc35a861004b8b7fbc759dc5de0b36f70aabd5e1",
                    operation='DELETE OR UPDATE OF "event_id", "statement_id", "affiliation_id"',
                    pgid="pgtrigger_keeps_record_cited_aad50",
                    table="events_evidence",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="source",
            trigger=pgtrigger.compiler.Trigger(
                name="revision",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current(); ignored text[] := ARRAY['revision', 'revised_tx', 'updated_at', 'date_sort', 'search_vector'];",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        NEW.revision := 1;\n        NEW.revised_tx := tx;\n    ELSIF NEW.revised_tx = -1  -- touched by a child row\n       OR (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN\n        NEW.revision := CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END;\n        NEW.revised_tx := tx;\n    ELSE  -- nothing changed: nothing is recorded, not even the time\n        NEW.revision := OLD.revision;\n        NEW.revised_tx := OLD.revised_tx;\n        NEW.updated_at := OLD.updated_at;\n    END IF;\n    RETURN NEW;\n",
                    hash="1d01dd36dee303d1da1568d43748dc69f0642771",
                    operation="INSERT OR UPDATE",
                    pgid="pgtrigger_revision_48799",
                    table="events_source",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="source",
            trigger=pgtrigger.compiler.Trigger(
                name="change_log",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current();",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES ('sources', NEW.id, 'create', NEW.revision, tx, now());\n    ELSIF TG_OP = 'UPDATE' THEN\n        IF NEW.revision <> OLD.revision THEN\n            INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n            VALUES ('sources', NEW.id, 'update', NEW.revision, tx, now());\n        END IF;\n    ELSE\n        -- One revision, one entry: what this transaction logged of the record\n        -- before deleting it is folded into the delete.\n        DELETE FROM events_change\n        WHERE txid = tx AND resource = 'sources' AND object_id = OLD.id;\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES (\n            'sources', OLD.id, 'delete',\n            CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END,\n            tx, now()\n        );\n    END IF;\n    RETURN NULL;\n",
                    hash="0703be56def8479b45c97152ac285490b6f2829c",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_change_log_2b01e",
                    table="events_source",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="source",
            trigger=pgtrigger.compiler.Trigger(
                name="source_guard",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="\n    IF TG_OP = 'UPDATE' AND NEW.text IS DISTINCT FROM OLD.text\n       AND EXISTS (SELECT 1 FROM events_evidence WHERE source_id = OLD.id) THEN\n        RAISE EXCEPTION 'The text of source % cannot change: evidence spans point into it.', OLD.id\n            USING ERRCODE = 'restrict_violation';\n    END IF;\n    NEW.sha256 := encode(sha256(convert_to(NEW.text, 'UTF8')), 'hex');\n    RETURN NEW;\n",
                    hash="7976ff883ec095555717a5651a344a2f54968109",
                    operation="INSERT OR UPDATE",
                    pgid="pgtrigger_source_guard_b0c2d",
                    table="events_source",
                    when="BEFORE",
                ),
            ),
        ),
        migrations.RunSQL(DROP_HANDWRITTEN, RESTORE_HANDWRITTEN),
    ]
