"""Stored PLOVER records (events.models.PloverRecord): the functions that
build and refresh them, and the triggers that mark them stale.

el_plover_records(ids) is the one home of a record's form: the fields of the
PLOVER manual's data chapter and the ledger's own (docs/plover.md), one JSON
object per event with evidence, built by PostgreSQL. A new form is a new
migration that replaces it and rebuilds the stored records
(`manage.py refresh_plover --rebuild`)."""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

# The feed's commit lock (events/migrations/0011_history_integrity.py): refreshes
# take it too, so that they run one at a time, each from a snapshot taken after
# the one before it committed, and never wait for it in the other order.
FEED_LOCK = 0x656C5F66656564

RECORDS = """
CREATE FUNCTION el_plover_records(ids bigint[])
RETURNS TABLE (event_id bigint, record text) LANGUAGE sql STABLE AS $$
SELECT e.id, json_build_object(
    'id', left(s.sha256, 12) || ':' || coalesce(nm.name, 'event-' || e.id),
    'date', e.date_start, 'enddate', e.date_end, 'date_precision', e.date_precision,
    'actor', coalesce(pa.actor, '[]'::json),
    'recipient', coalesce(pa.recipient, '[]'::json),
    'mediator', coalesce(pa.mediator, '[]'::json),
    'event', json_build_array(e.type),
    'quad_code', CASE e.type
        WHEN 'AGREE' THEN 1 WHEN 'CONSULT' THEN 1 WHEN 'SUPPORT' THEN 1 WHEN 'CONCEDE' THEN 1
        WHEN 'COOPERATE' THEN 2 WHEN 'AID' THEN 2 WHEN 'RETREAT' THEN 2
        WHEN 'REQUEST' THEN 3 WHEN 'ACCUSE' THEN 3 WHEN 'REJECT' THEN 3 WHEN 'THREATEN' THEN 3
        WHEN 'PROTEST' THEN 4 WHEN 'SANCTION' THEN 4 WHEN 'MOBILIZE' THEN 4 WHEN 'COERCE' THEN 4
        WHEN 'ASSAULT' THEN 4 END,
    'mode', CASE WHEN e.mode = '' THEN '[]'::json ELSE json_build_array(e.mode) END,
    'context', to_json(e.context),
    'status', e.status, 'title', e.title, 'summary', e.summary,
    'event_loc', CASE WHEN p.id IS NULL AND e.place_text = '' THEN NULL
        ELSE json_build_object(
            'extracted_place', nullif(e.place_text, ''), 'resolved_place', p.name,
            'key', p.slug, 'kind', p.kind, 'country_code', nullif(p.country, ''),
            'geonameid', p.geonames_id, 'lat', p.latitude, 'lon', p.longitude) END,
    'event_text', ev.quotes, 'text_info', ev.spans,
    'other_evidence', coalesce(ev.others, '[]'::json),
    'text', s.text,
    'cite_info', json_build_object(
        'citation', 'sha256:' || s.sha256, 'title', s.title, 'publication', s.publisher,
        'url', s.url, 'language', s.language, 'published_on', s.published_on,
        'codebook', e.vocabulary_version))::text
FROM events_event e
LEFT JOIN events_place p ON p.id = e.place_id
-- The event's evidence, read once: its passages in its document (the source
-- with the smallest sha256) and those in others.
JOIN (
    SELECT x.event_id,
        min(x.source_id) FILTER (WHERE x.first) AS source_id,
        json_agg(x.quote ORDER BY x.start, x."end", x.id) FILTER (WHERE x.first) AS quotes,
        json_agg(json_build_object('start', x.start, 'end', x."end")
            ORDER BY x.start, x."end", x.id) FILTER (WHERE x.first) AS spans,
        json_agg(json_build_object('citation', 'sha256:' || x.sha256, 'start', x.start,
            'end', x."end", 'quote', x.quote) ORDER BY x.sha256, x.start, x."end", x.id)
            FILTER (WHERE NOT x.first) AS others
    FROM (
        SELECT v.id, v.event_id, v.source_id, v.start, v."end", v.quote, vs.sha256,
            vs.sha256 = min(vs.sha256) OVER (PARTITION BY v.event_id) AS first
        FROM events_evidence v JOIN events_source vs ON vs.id = v.source_id
        WHERE v.event_id = ANY(ids)
    ) x GROUP BY x.event_id
) ev ON ev.event_id = e.id
JOIN events_source s ON s.id = ev.source_id
-- Its participants as three lists of entity objects, each in the order they
-- were added: `actor` (initiators and participants), `recipient` (targets),
-- `mediator`.
LEFT JOIN (
    SELECT ep.event_id,
        json_agg(en.entity ORDER BY ep.id)
            FILTER (WHERE ep.role IN ('initiator', 'participant')) AS actor,
        json_agg(en.entity ORDER BY ep.id) FILTER (WHERE ep.role = 'target') AS recipient,
        json_agg(en.entity ORDER BY ep.id) FILTER (WHERE ep.role = 'mediator') AS mediator
    FROM events_eventparticipant ep
    JOIN actors_actor a ON a.id = ep.actor_id
    LEFT JOIN actors_actoridentifier wd ON wd.actor_id = a.id AND wd.scheme = 'wikidata'
    CROSS JOIN LATERAL (SELECT json_build_object(
        'code', nullif(a.country, ''), 'sector', nullif(a.sector, ''),
        'identifier_id', wd.value, 'identifier_text', a.name, 'key', a.slug,
        'kind', a.kind, 'role', ep.role) AS entity) en
    WHERE ep.event_id = ANY(ids)
    GROUP BY ep.event_id
) pa ON pa.event_id = e.id
-- Its key in its document's annotation, which names the record.
LEFT JOIN LATERAL (
    SELECT r.key AS name FROM jsonb_each(s.annotation -> 'records' -> 'events') r
    WHERE r.value = to_jsonb(e.id) LIMIT 1
) nm ON true
WHERE e.id = ANY(ids)
$$;
"""

STORE = """
-- The records of `ids` built again and stored, under the refresh lock, from a
-- snapshot taken after it: a record that is the same is left as it is, one
-- whose event has none (deleted) is deleted. Returns how many ids.
CREATE FUNCTION el_plover_store(ids bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({lock});
    WITH built AS (SELECT b.event_id, b.record FROM el_plover_records(ids) b),
    gone AS (
        DELETE FROM events_ploverrecord r WHERE r.event_id = ANY(ids)
        AND r.event_id NOT IN (SELECT b.event_id FROM built b)
    )
    INSERT INTO events_ploverrecord (event_id, record) SELECT b.event_id, b.record FROM built b
    ON CONFLICT (event_id) DO UPDATE SET record = EXCLUDED.record
    WHERE events_ploverrecord.record IS DISTINCT FROM EXCLUDED.record;
    RETURN coalesce(cardinality(ids), 0);
END $$;

-- Rebuild the records marked stale by transaction `tx` (by any when NULL),
-- of `most` events at most (all when NULL): the marks this snapshot sees are
-- deleted, then the records built from a later one. A mark added meanwhile
-- stays for the next refresh. Returns how many events.
CREATE FUNCTION el_plover_refresh(tx bigint, most integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    PERFORM pg_advisory_xact_lock({lock});
    WITH marks AS (
        DELETE FROM events_ploverstale WHERE (tx IS NULL OR txid = tx) AND event_id IN (
            SELECT DISTINCT m.event_id FROM events_ploverstale m WHERE tx IS NULL OR m.txid = tx
            ORDER BY m.event_id LIMIT most
        ) RETURNING event_id
    )
    SELECT array_agg(DISTINCT event_id) INTO ids FROM marks;
    RETURN el_plover_store(ids);
END $$;

-- True for the first mark a transaction writes since its marks were last
-- refreshed (RefreshesPloverRecords clears it): as el_feed_numbering_queued().
CREATE FUNCTION el_plover_refresh_queued() RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    tx text := txid_current()::text;
BEGIN
    IF current_setting('el.plover_refresh_queued', true) = tx THEN
        RETURN false;
    END IF;
    PERFORM set_config('el.plover_refresh_queued', tx, true);
    RETURN true;
END $$;
""".replace("{lock}", str(FEED_LOCK))

# A record is read whole by every export: kept uncompressed (reading a
# compressed one cost twice the CPU) and in the table's own pages up to a page.
STORAGE = """
ALTER TABLE events_ploverrecord ALTER COLUMN record SET STORAGE EXTERNAL;
ALTER TABLE events_ploverrecord SET (toast_tuple_target = 8160);
"""

UNDO = """
DROP FUNCTION el_plover_refresh_queued();
DROP FUNCTION el_plover_refresh(bigint, integer);
DROP FUNCTION el_plover_store(bigint[]);
DROP FUNCTION el_plover_records(bigint[]);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0020_place_name_upper_index"),
        ("actors", "0006_merged_into"),
        ("sources", "0003_source_annotation"),
    ]

    operations = [
        migrations.RunSQL(RECORDS + STORE, UNDO),
        migrations.CreateModel(
            name="PloverRecord",
            fields=[
                (
                    "event",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="events.event",
                    ),
                ),
                ("record", models.TextField()),
            ],
            options={
                "db_table": "events_ploverrecord",
            },
        ),
        migrations.CreateModel(
            name="PloverStale",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("event_id", models.BigIntegerField(db_index=True)),
                (
                    "txid",
                    models.BigIntegerField(
                        db_default=models.Func(function="txid_current"), db_index=True
                    ),
                ),
                ("queues", models.BooleanField(db_default=False, default=False)),
            ],
            options={
                "db_table": "events_ploverstale",
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="event",
            trigger=pgtrigger.compiler.Trigger(
                name="plover_stale_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="\n    INSERT INTO events_ploverstale (event_id) SELECT id FROM new_rows;\n    IF FOUND AND el_plover_refresh_queued() THEN\n        INSERT INTO events_ploverstale (event_id, queues)\n        SELECT m.event_id, true FROM events_ploverstale m WHERE m.txid = txid_current() LIMIT 1;\n    END IF;\n    RETURN NULL;\n",
                    hash="bd6cfc51236c2a2fbce5ba3bc397fdf33627a059",
                    level="STATEMENT",
                    operation="INSERT",
                    pgid="pgtrigger_plover_stale_insert_a9c99",
                    referencing="REFERENCING NEW TABLE AS new_rows ",
                    table="events_event",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="event",
            trigger=pgtrigger.compiler.Trigger(
                name="plover_stale_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="\n    INSERT INTO events_ploverstale (event_id) SELECT id FROM new_rows;\n    IF FOUND AND el_plover_refresh_queued() THEN\n        INSERT INTO events_ploverstale (event_id, queues)\n        SELECT m.event_id, true FROM events_ploverstale m WHERE m.txid = txid_current() LIMIT 1;\n    END IF;\n    RETURN NULL;\n",
                    hash="d28fedd62d5d76c9c7eb1e1d23a28c5fd39745e9",
                    level="STATEMENT",
                    operation="UPDATE",
                    pgid="pgtrigger_plover_stale_update_46eed",
                    referencing="REFERENCING OLD TABLE AS old_rows  NEW TABLE AS new_rows ",
                    table="events_event",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="event",
            trigger=pgtrigger.compiler.Trigger(
                name="plover_stale_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="\n    INSERT INTO events_ploverstale (event_id) SELECT id FROM old_rows;\n    IF FOUND AND el_plover_refresh_queued() THEN\n        INSERT INTO events_ploverstale (event_id, queues)\n        SELECT m.event_id, true FROM events_ploverstale m WHERE m.txid = txid_current() LIMIT 1;\n    END IF;\n    RETURN NULL;\n",
                    hash="5d144c0ac092b25a68db217bdf35ccc41ba2c327",
                    level="STATEMENT",
                    operation="DELETE",
                    pgid="pgtrigger_plover_stale_delete_f9f34",
                    referencing="REFERENCING OLD TABLE AS old_rows ",
                    table="events_event",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="place",
            trigger=pgtrigger.compiler.Trigger(
                name="plover_stale_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func="\n    INSERT INTO events_ploverstale (event_id) SELECT e.id FROM new_rows n JOIN old_rows o ON o.id = n.id JOIN events_event e ON e.place_id = n.id WHERE (n.name, n.slug, n.kind, n.country, n.geonames_id, n.latitude, n.longitude) IS DISTINCT FROM (o.name, o.slug, o.kind, o.country, o.geonames_id, o.latitude, o.longitude);\n    IF FOUND AND el_plover_refresh_queued() THEN\n        INSERT INTO events_ploverstale (event_id, queues)\n        SELECT m.event_id, true FROM events_ploverstale m WHERE m.txid = txid_current() LIMIT 1;\n    END IF;\n    RETURN NULL;\n",
                    hash="444734e075ad0b480ec3fb2d23d7e52088487a37",
                    level="STATEMENT",
                    operation="UPDATE",
                    pgid="pgtrigger_plover_stale_update_58de3",
                    referencing="REFERENCING OLD TABLE AS old_rows  NEW TABLE AS new_rows ",
                    table="events_place",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="ploverstale",
            trigger=pgtrigger.compiler.Trigger(
                name="refreshes_plover_records",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (NEW.queues)",
                    constraint="CONSTRAINT",
                    func="\n    PERFORM set_config('el.plover_refresh_queued', '', true);\n    IF current_setting('transaction_isolation') = 'read committed' AND (\n        SELECT count(*) FROM (\n            SELECT 1 FROM events_ploverstale WHERE txid = txid_current()\n            LIMIT 1001\n        ) mine\n    ) <= 1000 THEN\n        PERFORM el_plover_refresh(txid_current(), NULL);\n    END IF;\n    RETURN NULL;\n",
                    hash="f3baff2b039757c531d400a73eec22db4035e080",
                    operation="INSERT",
                    pgid="pgtrigger_refreshes_plover_records_5a6d1",
                    table="events_ploverstale",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RunSQL(STORAGE, migrations.RunSQL.noop),
    ]
