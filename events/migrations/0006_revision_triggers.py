"""Revision numbers kept by PostgreSQL, whatever path writes:

- a resource (actor, affiliation, source, place, event, statement) starts at
  revision 1 and gains one for every transaction that changes it;
- a change to one of its child rows (participants, evidence, aliases,
  identifiers, statement links) counts as a change of the resource;
- several changes in one transaction make one revision.

`revised_tx` holds the transaction (txid_current()) that set the revision.
"""

from django.db import migrations

RESOURCES = [
    "actors_actor",
    "actors_affiliation",
    "events_source",
    "events_place",
    "events_event",
    "events_statement",
]

# child table -> [(foreign key column, parent table), ...]
CHILDREN = {
    "actors_actoralias": [("actor_id", "actors_actor")],
    "actors_actoridentifier": [("actor_id", "actors_actor")],
    "events_eventparticipant": [("event_id", "events_event")],
    "events_statementactor": [("statement_id", "events_statement")],
    "events_statementevent": [("statement_id", "events_statement")],
    "events_evidence": [
        ("event_id", "events_event"),
        ("statement_id", "events_statement"),
        ("affiliation_id", "actors_affiliation"),
    ],
}

FUNCTIONS = r"""
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
    ELSE
        NEW.revision := OLD.revision;
        NEW.revised_tx := OLD.revised_tx;
    END IF;
    RETURN NEW;
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
"""


def forward_sql() -> str:
    statements = [FUNCTIONS]
    for table in RESOURCES:
        statements.append(
            f"CREATE TRIGGER el_revision BEFORE INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION el_revision();"
        )
    for table, parents in CHILDREN.items():
        args = ", ".join(f"'{column}', '{parent}'" for column, parent in parents)
        statements.append(
            f"CREATE TRIGGER el_touch_parent AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION el_touch_parent({args});"
        )
    return "\n".join(statements)


def backward_sql() -> str:
    statements = [f"DROP TRIGGER el_revision ON {table};" for table in RESOURCES]
    statements += [f"DROP TRIGGER el_touch_parent ON {table};" for table in CHILDREN]
    statements.append("DROP FUNCTION el_touch_parent(); DROP FUNCTION el_revision();")
    return "\n".join(statements)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0005_history_and_revisions"),
        ("actors", "0002_history_and_revisions"),
    ]

    operations = [migrations.RunSQL(forward_sql(), backward_sql())]
