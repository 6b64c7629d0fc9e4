"""The triggers of actors, their aliases, identifiers and affiliations are
declared on their models (django-pgtrigger, `Meta.triggers`): installed
here, and the hand-written ones they replace (events/migrations/0002, 0006,
0007) dropped, in this one transaction, so no write goes unchecked in
between. Their functions, which other tables still use, are dropped by
events/migrations/0016."""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations

DROP_HANDWRITTEN = """
DROP TRIGGER el_revision ON actors_actor;
DROP TRIGGER el_log_change ON actors_actor;
DROP TRIGGER el_touch_parent ON actors_actoralias;
DROP TRIGGER el_touch_parent ON actors_actoridentifier;
DROP TRIGGER el_revision ON actors_affiliation;
DROP TRIGGER el_log_change ON actors_affiliation;
DROP TRIGGER actors_affiliation_requires_evidence ON actors_affiliation;
"""

# Going back: the triggers as they were (the functions are back by then).
RESTORE_HANDWRITTEN = """
CREATE TRIGGER el_revision BEFORE INSERT OR UPDATE ON actors_actor
    FOR EACH ROW EXECUTE FUNCTION el_revision();
CREATE TRIGGER el_log_change AFTER INSERT OR UPDATE OR DELETE ON actors_actor
    FOR EACH ROW EXECUTE FUNCTION el_log_change('actors');
CREATE TRIGGER el_touch_parent AFTER INSERT OR UPDATE OR DELETE ON actors_actoralias
    FOR EACH ROW EXECUTE FUNCTION el_touch_parent('actor_id', 'actors_actor');
CREATE TRIGGER el_touch_parent AFTER INSERT OR UPDATE OR DELETE ON actors_actoridentifier
    FOR EACH ROW EXECUTE FUNCTION el_touch_parent('actor_id', 'actors_actor');
CREATE TRIGGER el_revision BEFORE INSERT OR UPDATE ON actors_affiliation
    FOR EACH ROW EXECUTE FUNCTION el_revision();
CREATE TRIGGER el_log_change AFTER INSERT OR UPDATE OR DELETE ON actors_affiliation
    FOR EACH ROW EXECUTE FUNCTION el_log_change('affiliations');
CREATE CONSTRAINT TRIGGER actors_affiliation_requires_evidence
    AFTER INSERT ON actors_affiliation DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_record_requires_evidence('affiliation_id');
"""


class Migration(migrations.Migration):
    dependencies = [
        ("actors", "0002_history_and_revisions"),
        # The hand-written triggers dropped here were made by the events app.
        ("events", "0015_sources_move_to_their_app"),
    ]

    operations = [
        pgtrigger.migrations.AddTrigger(
            model_name="actor",
            trigger=pgtrigger.compiler.Trigger(
                name="revision",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current(); ignored text[] := ARRAY['revision', 'revised_tx', 'updated_at', 'date_sort', 'search_vector'];",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        NEW.revision := 1;\n        NEW.revised_tx := tx;\n    ELSIF NEW.revised_tx = -1  -- touched by a child row\n       OR (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN\n        NEW.revision := CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END;\n        NEW.revised_tx := tx;\n    ELSE  -- nothing changed: nothing is recorded, not even the time\n        NEW.revision := OLD.revision;\n        NEW.revised_tx := OLD.revised_tx;\n        NEW.updated_at := OLD.updated_at;\n    END IF;\n    RETURN NEW;\n",
                    hash="01bc30c442438676c8d443e924624986647fa12d",
                    operation="INSERT OR UPDATE",
                    pgid="pgtrigger_revision_0cd57",
                    table="actors_actor",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="actor",
            trigger=pgtrigger.compiler.Trigger(
                name="change_log",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current();",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES ('actors', NEW.id, 'create', NEW.revision, tx, now());\n    ELSIF TG_OP = 'UPDATE' THEN\n        IF NEW.revision <> OLD.revision THEN\n            INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n            VALUES ('actors', NEW.id, 'update', NEW.revision, tx, now());\n        END IF;\n    ELSE\n        -- One revision, one entry: what this transaction logged of the record\n        -- before deleting it is folded into the delete.\n        DELETE FROM events_change\n        WHERE txid = tx AND resource = 'actors' AND object_id = OLD.id;\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES (\n            'actors', OLD.id, 'delete',\n            CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END,\n            tx, now()\n        );\n    END IF;\n    RETURN NULL;\n",
                    hash="a99402805d7d7e2ad010d5956afd4f44334a0e76",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_change_log_2592e",
                    table="actors_actor",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="actoralias",
            trigger=pgtrigger.compiler.Trigger(
                name="child_touches_parent",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE parent_id bigint; ids bigint[];",
                    func='\n    ids := ARRAY[]::bigint[];\n    IF TG_OP <> \'DELETE\' THEN\n        ids := ids || NEW."actor_id";\n    END IF;\n    IF TG_OP <> \'INSERT\' THEN\n        ids := ids || OLD."actor_id";\n    END IF;\n    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP\n        IF parent_id IS NOT NULL THEN\n            UPDATE "actors_actor" SET revised_tx = -1\n            WHERE id = parent_id AND revised_tx <> txid_current();\n        END IF;\n    END LOOP;\n    RETURN NULL;\n',
                    hash="c37272c9cc4fb6ca338a59a123de17bed4063225",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_child_touches_parent_b039b",
                    table="actors_actoralias",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="actoridentifier",
            trigger=pgtrigger.compiler.Trigger(
                name="child_touches_parent",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE parent_id bigint; ids bigint[];",
                    func='\n    ids := ARRAY[]::bigint[];\n    IF TG_OP <> \'DELETE\' THEN\n        ids := ids || NEW."actor_id";\n    END IF;\n    IF TG_OP <> \'INSERT\' THEN\n        ids := ids || OLD."actor_id";\n    END IF;\n    FOR parent_id IN SELECT DISTINCT unnest(ids) LOOP\n        IF parent_id IS NOT NULL THEN\n            UPDATE "actors_actor" SET revised_tx = -1\n            WHERE id = parent_id AND revised_tx <> txid_current();\n        END IF;\n    END LOOP;\n    RETURN NULL;\n',
                    hash="4f7515d19157b94f95d62ef59a3884396320e802",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_child_touches_parent_2c1e8",
                    table="actors_actoridentifier",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="affiliation",
            trigger=pgtrigger.compiler.Trigger(
                name="revision",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current(); ignored text[] := ARRAY['revision', 'revised_tx', 'updated_at', 'date_sort', 'search_vector'];",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        NEW.revision := 1;\n        NEW.revised_tx := tx;\n    ELSIF NEW.revised_tx = -1  -- touched by a child row\n       OR (to_jsonb(NEW) - ignored) IS DISTINCT FROM (to_jsonb(OLD) - ignored) THEN\n        NEW.revision := CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END;\n        NEW.revised_tx := tx;\n    ELSE  -- nothing changed: nothing is recorded, not even the time\n        NEW.revision := OLD.revision;\n        NEW.revised_tx := OLD.revised_tx;\n        NEW.updated_at := OLD.updated_at;\n    END IF;\n    RETURN NEW;\n",
                    hash="506bd72ce8ef50984c67f1829ae175d7d6376b6c",
                    operation="INSERT OR UPDATE",
                    pgid="pgtrigger_revision_8b22d",
                    table="actors_affiliation",
                    when="BEFORE",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="affiliation",
            trigger=pgtrigger.compiler.Trigger(
                name="change_log",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    declare="DECLARE tx bigint := txid_current();",
                    func="\n    IF TG_OP = 'INSERT' THEN\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES ('affiliations', NEW.id, 'create', NEW.revision, tx, now());\n    ELSIF TG_OP = 'UPDATE' THEN\n        IF NEW.revision <> OLD.revision THEN\n            INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n            VALUES ('affiliations', NEW.id, 'update', NEW.revision, tx, now());\n        END IF;\n    ELSE\n        -- One revision, one entry: what this transaction logged of the record\n        -- before deleting it is folded into the delete.\n        DELETE FROM events_change\n        WHERE txid = tx AND resource = 'affiliations' AND object_id = OLD.id;\n        INSERT INTO events_change (resource, object_id, action, revision, txid, changed_at)\n        VALUES (\n            'affiliations', OLD.id, 'delete',\n            CASE WHEN OLD.revised_tx = tx THEN OLD.revision ELSE OLD.revision + 1 END,\n            tx, now()\n        );\n    END IF;\n    RETURN NULL;\n",
                    hash="6af1531689c09dbf985f754bb1629c0bf8686d4d",
                    operation="INSERT OR UPDATE OR DELETE",
                    pgid="pgtrigger_change_log_021e9",
                    table="actors_affiliation",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="affiliation",
            trigger=pgtrigger.compiler.Trigger(
                name="requires_evidence",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    constraint="CONSTRAINT",
                    declare="DECLARE present boolean; cited boolean;",
                    func="\n    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE id = $1)',\n                   TG_TABLE_SCHEMA, TG_TABLE_NAME)\n        INTO present USING NEW.id;\n    IF NOT present THEN\n        RETURN NULL;  -- deleted later in the same transaction\n    END IF;\n    SELECT EXISTS (SELECT 1 FROM events_evidence WHERE \"affiliation_id\" = NEW.id) INTO cited;\n    IF NOT cited THEN\n        RAISE EXCEPTION '% % cites no evidence: every event, statement and affiliation '\n                        'needs at least one evidence span.',\n            TG_TABLE_NAME, NEW.id\n            USING ERRCODE = 'check_violation';\n    END IF;\n    RETURN NULL;\n",
                    hash="ec54c61af33edb7c6f4c2ab5c6bb29b4b79390d9",
                    operation="INSERT",
                    pgid="pgtrigger_requires_evidence_8ed6c",
                    table="actors_affiliation",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RunSQL(DROP_HANDWRITTEN, RESTORE_HANDWRITTEN),
    ]
