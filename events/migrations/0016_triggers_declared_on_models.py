"""The triggers of places, events, statements and their child rows are
declared on their models (django-pgtrigger, `Meta.triggers`): installed
here, and the hand-written ones they replace (0002, 0006, 0007) dropped, in
this one transaction, so no write goes unchecked in between.

The other apps have replaced theirs by now (see the dependencies), so the
functions of the hand-written triggers go too: the last of them were used
here. el_feed_commit_seq() (0011) stays: Change's trigger and the bulk loader
call it."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations

DROP_HANDWRITTEN = """
DROP TRIGGER el_revision ON events_place;
DROP TRIGGER el_log_change ON events_place;
DROP TRIGGER el_revision ON events_event;
DROP TRIGGER el_log_change ON events_event;
DROP TRIGGER events_event_requires_evidence ON events_event;
DROP TRIGGER el_touch_parent ON events_eventparticipant;
DROP TRIGGER el_revision ON events_statement;
DROP TRIGGER el_log_change ON events_statement;
DROP TRIGGER events_statement_requires_evidence ON events_statement;
DROP TRIGGER el_touch_parent ON events_statementactor;
DROP TRIGGER el_touch_parent ON events_statementevent;

DROP FUNCTION events_record_requires_evidence();
DROP FUNCTION el_touch_parent();
DROP FUNCTION el_log_change();
DROP FUNCTION el_revision();
"""

# Going back: the functions as they were last defined (0002, 0006, 0011) and
# the triggers of this app; the other apps put theirs back after this.
RESTORE_HANDWRITTEN = r"""
CREATE FUNCTION el_revision() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE FUNCTION el_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- TG_ARGV: pairs of (foreign key column, parent table).
CREATE FUNCTION el_touch_parent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i int := 0;
    parent_id bigint;
    ids bigint[];
BEGIN
    WHILE i < TG_NARGS LOOP
        ids := ARRAY[]::bigint[];
        IF TG_OP <> 'DELETE' THEN
            EXECUTE format('SELECT ($1).%I', TG_ARGV[i]) INTO parent_id USING NEW;
            ids := ids || parent_id;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            EXECUTE format('SELECT ($1).%I', TG_ARGV[i]) INTO parent_id USING OLD;
            ids := ids || parent_id;
        END IF;
        FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP
            IF parent_id IS NOT NULL THEN
                EXECUTE format(
                    'UPDATE %I SET revised_tx = -1 WHERE id = $1 AND revised_tx <> $2',
                    TG_ARGV[i + 1]
                ) USING parent_id, txid_current();
            END IF;
        END LOOP;
        i := i + 2;
    END LOOP;
    RETURN NULL;
END $$;

-- TG_ARGV[0]: the evidence column that points at the table.
CREATE FUNCTION events_record_requires_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    present boolean;
    cited boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE id = $1)', TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO present USING NEW.id;
    IF NOT present THEN
        RETURN NULL;  -- deleted later in the same transaction
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM events_evidence WHERE %I = $1)', TG_ARGV[0])
        INTO cited USING NEW.id;
    IF NOT cited THEN
        RAISE EXCEPTION '% % cites no evidence: every event, statement and affiliation needs at least one evidence span.',
            TG_TABLE_NAME, NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER el_revision BEFORE INSERT OR UPDATE ON events_place
    FOR EACH ROW EXECUTE FUNCTION el_revision();
CREATE TRIGGER el_log_change AFTER INSERT OR UPDATE OR DELETE ON events_place
    FOR EACH ROW EXECUTE FUNCTION el_log_change('places');
CREATE TRIGGER el_revision BEFORE INSERT OR UPDATE ON events_event
    FOR EACH ROW EXECUTE FUNCTION el_revision();
CREATE TRIGGER el_log_change AFTER INSERT OR UPDATE OR DELETE ON events_event
    FOR EACH ROW EXECUTE FUNCTION el_log_change('events');
CREATE CONSTRAINT TRIGGER events_event_requires_evidence
    AFTER INSERT ON events_event DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_record_requires_evidence('event_id');
CREATE TRIGGER el_touch_parent AFTER INSERT OR UPDATE OR DELETE ON events_eventparticipant
    FOR EACH ROW EXECUTE FUNCTION el_touch_parent('event_id', 'events_event');
CREATE TRIGGER el_revision BEFORE INSERT OR UPDATE ON events_statement
    FOR EACH ROW EXECUTE FUNCTION el_revision();
CREATE TRIGGER el_log_change AFTER INSERT OR UPDATE OR DELETE ON events_statement
    FOR EACH ROW EXECUTE FUNCTION el_log_change('statements');
CREATE CONSTRAINT TRIGGER events_statement_requires_evidence
    AFTER INSERT ON events_statement DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_record_requires_evidence('statement_id');
CREATE TRIGGER el_touch_parent AFTER INSERT OR UPDATE OR DELETE ON events_statementactor
    FOR EACH ROW EXECUTE FUNCTION el_touch_parent('statement_id', 'events_statement');
CREATE TRIGGER el_touch_parent AFTER INSERT OR UPDATE OR DELETE ON events_statementevent
    FOR EACH ROW EXECUTE FUNCTION el_touch_parent('statement_id', 'events_statement');
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0015_sources_move_to_their_app"),
        # The other tables that used the functions dropped here.
        ("actors", "0003_triggers_declared_on_models"),
        ("sources", "0002_triggers_declared_on_models"),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name="event",
            trigger=pgtrigger.compiler.Trigger(
                name="revision",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current(); ignored text[] := ARRAY['revision', 'revised_tx', 'updated_at', 'date_sort', 'search_vector'];",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        NEW.revision := 1;\n        NEW.revised_tx := tx;\n    ELSIF NEW.revised_tx = -1  -- touched by a child row\n       OR (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN\n        NEW.revision := CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END;\n        NEW.revised_tx := tx;\n    ELSE  -- nothing changed: nothing is recorded, not even the time\n        NEW.revision := OLD.revision;\n        NEW.revised_tx := OLD.revised_tx;\n        NEW.updated_at := OLD.updated_at;\n    END IF;\n    RETURN NEW;\n",
                    hash="ceee9541d46c45343abfaa3b186ef2f5f87b8283",
                    operation="INSERT OR UPDATE",
                    pgid="pgtrigger_revision_d3cf4",
                    table="events_event",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="event",
            trigger=pgtrigger.compiler.Trigger(
                name="change_log",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current();",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES ('events', NEW.id, 'create', NEW.revision, tx, now());\n    ELSIF TG_OP = 'UPDATE' THEN\n        IF NEW.revision <> OLD.revision THEN\n            INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n            VALUES ('events', NEW.id, 'update', NEW.revision, tx, now());\n        END IF;\n    ELSE\n        -- One revision, one entry: what this transaction logged of the record\n        -- before deleting it is folded into the delete.\n        DELETE FROM events_change\n        WHERE txid = tx AND resource = 'events' AND object_id = OLD.id;\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES (\n            'events', OLD.id, 'delete',\n            CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END,\n            tx, now()\n        );\n    END IF;\n    RETURN NULL;\n",
                    hash="2291cbc9b1702754f1a9395bc18a5d195fff2316",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_change_log_44763",
                    table="events_event",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="event",
            trigger=pgtrigger.compiler.Trigger(
                name="requires_evidence",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    constraint="CONSTRAINT",
                    declare="DECLARE present boolean; cited boolean;",
                    func="\n    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE id = $1)',\n                   TG_TABLE_SCHEMA, TG_TABLE_NAME)\n        INTO present USING NEW.id;\n    IF NOT present THEN\n        RETURN NULL;  -- deleted later in the same transaction\n    END IF;\n    SELECT EXISTS (SELECT 1 FROM events_evidence WHERE \"event_id\" = NEW.id) INTO cited;\n    IF NOT cited THEN\n        RAISE EXCEPTION '% % cites no evidence: every event, statement and affiliation '\n                        'needs at least one evidence span.',\n            TG_TABLE_NAME, NEW.id\n            USING ERRCODE = 'check_violation';\n    END IF;\n    RETURN NULL;\n",
                    hash="fe9cca1fb6e47d3e5a648c8d381ad3ea60c79900",
                    operation="INSERT",
                    pgid="pgtrigger_requires_evidence_62521",
                    table="events_event",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="eventparticipant",
            trigger=pgtrigger.compiler.Trigger(
                name="child_touches_parent",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE parent_id bigint; ids bigint[];",
                    func='\n    ids := ARRAY[]::bigint[];\n    IF TG_OP <> \'DELETE\' THEN\n        ids := ids || NEW."event_id";\n    END IF;\n    IF TG_OP <> \'INSERT\' THEN\n        ids := ids || OLD."event_id";\n    END IF;\n    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP\n        IF parent_id IS NOT NULL THEN\n            UPDATE "events_event" SET revised_tx = -1\n            WHERE id = parent_id AND revised_tx <> txid_current();\n        END IF;\n    END LOOP;\n    RETURN NULL;\n',
                    hash="9c467c98639407716aa88fcafcc1ad5b353061de",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_child_touches_parent_0cfec",
                    table="events_eventparticipant",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="place",
            trigger=pgtrigger.compiler.Trigger(
                name="revision",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current(); ignored text[] := ARRAY['revision', 'revised_tx', 'updated_at', 'date_sort', 'search_vector'];",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        NEW.revision := 1;\n        NEW.revised_tx := tx;\n    ELSIF NEW.revised_tx = -1  -- touched by a child row\n       OR (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN\n        NEW.revision := CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END;\n        NEW.revised_tx := tx;\n    ELSE  -- nothing changed: nothing is recorded, not even the time\n        NEW.revision := OLD.revision;\n        NEW.revised_tx := OLD.revised_tx;\n        NEW.updated_at := OLD.updated_at;\n    END IF;\n    RETURN NEW;\n",
                    hash="10ab1e1b15a6d928151874973bde9dc578c3611e",
                    operation="INSERT OR UPDATE",
                    pgid="pgtrigger_revision_421d3",
                    table="events_place",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="place",
            trigger=pgtrigger.compiler.Trigger(
                name="change_log",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current();",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES ('places', NEW.id, 'create', NEW.revision, tx, now());\n    ELSIF TG_OP = 'UPDATE' THEN\n        IF NEW.revision <> OLD.revision THEN\n            INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n            VALUES ('places', NEW.id, 'update', NEW.revision, tx, now());\n        END IF;\n    ELSE\n        -- One revision, one entry: what this transaction logged of the record\n        -- before deleting it is folded into the delete.\n        DELETE FROM events_change\n        WHERE txid = tx AND resource = 'places' AND object_id = OLD.id;\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES (\n            'places', OLD.id, 'delete',\n            CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END,\n            tx, now()\n        );\n    END IF;\n    RETURN NULL;\n",
                    hash="21ad125ca9370f367b7ec59819ccb179f2842d28",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_change_log_2a233",
                    table="events_place",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="statement",
            trigger=pgtrigger.compiler.Trigger(
                name="revision",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current(); ignored text[] := ARRAY['revision', 'revised_tx', 'updated_at', 'date_sort', 'search_vector'];",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        NEW.revision := 1;\n        NEW.revised_tx := tx;\n    ELSIF NEW.revised_tx = -1  -- touched by a child row\n       OR (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN\n        NEW.revision := CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END;\n        NEW.revised_tx := tx;\n    ELSE  -- nothing changed: nothing is recorded, not even the time\n        NEW.revision := OLD.revision;\n        NEW.revised_tx := OLD.revised_tx;\n        NEW.updated_at := OLD.updated_at;\n    END IF;\n    RETURN NEW;\n",
                    hash="dea3785359e8c303a9ef35dfb48203317dd15145",
                    operation="INSERT OR UPDATE",
                    pgid="pgtrigger_revision_4976d",
                    table="events_statement",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="statement",
            trigger=pgtrigger.compiler.Trigger(
                name="change_log",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current();",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES ('statements', NEW.id, 'create', NEW.revision, tx, now());\n    ELSIF TG_OP = 'UPDATE' THEN\n        IF NEW.revision <> OLD.revision THEN\n            INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n            VALUES ('statements', NEW.id, 'update', NEW.revision, tx, now());\n        END IF;\n    ELSE\n        -- One revision, one entry: what this transaction logged of the record\n        -- before deleting it is folded into the delete.\n        DELETE FROM events_change\n        WHERE txid = tx AND resource = 'statements' AND object_id = OLD.id;\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES (\n            'statements', OLD.id, 'delete',\n            CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END,\n            tx, now()\n        );\n    END IF;\n    RETURN NULL;\n",
                    hash="9245be986b4d2bf6412b1f5683e99802e0135a7d",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_change_log_3e9da",
                    table="events_statement",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="statement",
            trigger=pgtrigger.compiler.Trigger(
                name="requires_evidence",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    constraint="CONSTRAINT",
                    declare="DECLARE present boolean; cited boolean;",
                    func="\n    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE id = $1)',\n                   TG_TABLE_SCHEMA, TG_TABLE_NAME)\n        INTO present USING NEW.id;\n    IF NOT present THEN\n        RETURN NULL;  -- deleted later in the same transaction\n    END IF;\n    SELECT EXISTS (SELECT 1 FROM events_evidence WHERE \"statement_id\" = NEW.id) INTO cited;\n    IF NOT cited THEN\n        RAISE EXCEPTION '% % cites no evidence: every event, statement and affiliation '\n                        'needs at least one evidence span.',\n            TG_TABLE_NAME, NEW.id\n            USING ERRCODE = 'check_violation';\n    END IF;\n    RETURN NULL;\n",
                    hash="51cea7bff4d5c47303d0c820644b89a9fd718db3",
                    operation="INSERT",
                    pgid="pgtrigger_requires_evidence_63fb5",
                    table="events_statement",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="statementactor",
            trigger=pgtrigger.compiler.Trigger(
                name="child_touches_parent",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE parent_id bigint; ids bigint[];",
                    func='\n    ids := ARRAY[]::bigint[];\n    IF TG_OP <> \'DELETE\' THEN\n        ids := ids || NEW."statement_id";\n    END IF;\n    IF TG_OP <> \'INSERT\' THEN\n        ids := ids || OLD."statement_id";\n    END IF;\n    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP\n        IF parent_id IS NOT NULL THEN\n            UPDATE "events_statement" SET revised_tx = -1\n            WHERE id = parent_id AND revised_tx <> txid_current();\n        END IF;\n    END LOOP;\n    RETURN NULL;\n',
                    hash="c99dadae05b1285d2423eafa497b7dde9c1f4b49",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_child_touches_parent_da421",
                    table="events_statementactor",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="statementevent",
            trigger=pgtrigger.compiler.Trigger(
                name="child_touches_parent",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE parent_id bigint; ids bigint[];",
                    func='\n    ids := ARRAY[]::bigint[];\n    IF TG_OP <> \'DELETE\' THEN\n        ids := ids || NEW."statement_id";\n    END IF;\n    IF TG_OP <> \'INSERT\' THEN\n        ids := ids || OLD."statement_id";\n    END IF;\n    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP\n        IF parent_id IS NOT NULL THEN\n            UPDATE "events_statement" SET revised_tx = -1\n            WHERE id = parent_id AND revised_tx <> txid_current();\n        END IF;\n    END LOOP;\n    RETURN NULL;\n',
                    hash="e5c7f92ef26a41342ed578720effa1c9283399a7",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_child_touches_parent_ae157",
                    table="events_statementevent",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RunSQL(DROP_HANDWRITTEN, RESTORE_HANDWRITTEN),
    ]
