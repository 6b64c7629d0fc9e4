"""Invariants that span rows, enforced in PostgreSQL so that every write path
(API, admin, seed, shell, raw SQL) obeys them:

- a source's sha256 is the digest of its UTF-8 text, and the text cannot change
  while evidence points into it;
- an evidence quote is exactly the source text between its offsets;
- every event, statement and affiliation cites at least one evidence span,
  checked when the transaction commits (deferred constraint triggers).
"""

from django.db import migrations

FORWARD = r"""
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

CREATE TRIGGER events_source_guard
    BEFORE INSERT OR UPDATE ON events_source
    FOR EACH ROW EXECUTE FUNCTION events_source_guard();

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

CREATE TRIGGER events_evidence_check_quote
    BEFORE INSERT OR UPDATE OF source_id, start, "end", quote ON events_evidence
    FOR EACH ROW EXECUTE FUNCTION events_evidence_check_quote();

-- Fired on events_event, events_statement and actors_affiliation; TG_ARGV[0]
-- names the evidence column that points at that table.
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

CREATE CONSTRAINT TRIGGER events_event_requires_evidence
    AFTER INSERT ON events_event DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_record_requires_evidence('event_id');
CREATE CONSTRAINT TRIGGER events_statement_requires_evidence
    AFTER INSERT ON events_statement DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_record_requires_evidence('statement_id');
CREATE CONSTRAINT TRIGGER actors_affiliation_requires_evidence
    AFTER INSERT ON actors_affiliation DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_record_requires_evidence('affiliation_id');

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

CREATE CONSTRAINT TRIGGER events_evidence_keeps_record_cited
    AFTER DELETE OR UPDATE OF event_id, statement_id, affiliation_id ON events_evidence
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_evidence_keeps_record_cited();
"""

BACKWARD = r"""
DROP TRIGGER events_evidence_keeps_record_cited ON events_evidence;
DROP FUNCTION events_evidence_keeps_record_cited();
DROP TRIGGER actors_affiliation_requires_evidence ON actors_affiliation;
DROP TRIGGER events_statement_requires_evidence ON events_statement;
DROP TRIGGER events_event_requires_evidence ON events_event;
DROP FUNCTION events_record_requires_evidence();
DROP TRIGGER events_evidence_check_quote ON events_evidence;
DROP FUNCTION events_evidence_check_quote();
DROP TRIGGER events_source_guard ON events_source;
DROP FUNCTION events_source_guard();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
        ("actors", "0001_initial"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
