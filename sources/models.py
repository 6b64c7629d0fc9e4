"""Sources: the documents facts come from, with their full text, and the
evidence spans that cite their exact words."""

import hashlib

import pgtrigger
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from ledger.models import (
    SEARCH_CONFIG,
    Revisioned,
    track_history,
)
from ledger.triggers import ChangeLog, Revision, TouchesParent, quote_name

TEXT_LOCKED = (
    "The text of this source cannot change: evidence spans point into it, and changing it "
    "would break them. Store the new version as a new source."
)


class SourceQuerySet(models.QuerySet):
    def with_text(self, text: str) -> "SourceQuerySet":
        """The source holding exactly `text` (at most one: the digest is unique)."""
        return self.filter(sha256=Source.digest(text))


# Source.digest() in SQL, over the column or expression put in for {}: for
# writes that bypass the row triggers (the bulk loader) and for the trigger.
DIGEST_SQL = "encode(sha256(convert_to({}, 'UTF8')), 'hex')"

# The backstop of Source.clean() and the keeper of the digest, whatever path writes.
SOURCE_GUARD = f"""
    IF TG_OP = 'UPDATE' AND NEW.text IS DISTINCT FROM OLD.text
       AND EXISTS (SELECT 1 FROM events_evidence WHERE source_id = OLD.id) THEN
        RAISE EXCEPTION 'The text of source % cannot change: evidence spans point into it.', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    NEW.sha256 := {DIGEST_SQL.format("NEW.text")};
    RETURN NEW;
"""


# Tables keep the names they had in the events app, where these models began.
@track_history("SourceSnapshot", db_table="events_sourcesnapshot")
class Source(Revisioned):
    """A document facts come from. Its full text is kept so that every evidence
    span stays checkable; `sha256` is the hex digest of the UTF-8 text, kept
    current by a database trigger whatever path writes the row. A text is stored
    once, and cannot change while evidence points into it (`clean()`, with a
    trigger as the backstop).
    """

    title = models.CharField(max_length=500, blank=True)
    publisher = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    published_on = models.DateField(null=True, blank=True)
    language = models.CharField(max_length=35, default="en", help_text="BCP 47 tag, e.g. en.")
    text = models.TextField()
    sha256 = models.CharField(max_length=64, unique=True, editable=False)
    # The annotation the source was last loaded with (documents endpoint,
    # seed) and the records it produced, by item: {"content": ..., "sha256":
    # ..., "records": {"events": {item: id}, "statements": ..., "affiliations":
    # ...}}. A corrected annotation is matched to these records
    # (events/documents.py). Empty for a source stored on its own.
    annotation = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SourceQuerySet.as_manager()

    class Meta:
        db_table = "events_source"
        ordering = ["-published_on", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="events_source_text_not_empty"),
        ]
        # Fired in the order of their names (ledger/triggers.py): the revision
        # sees the row as written, before the guard sets its digest.
        triggers = [
            Revision(),
            ChangeLog(resource="sources"),
            pgtrigger.Trigger(
                name="source_guard",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert | pgtrigger.Update,
                func=SOURCE_GUARD,
            ),
        ]

    def __str__(self) -> str:
        label = self.title or self.text[:60]
        return f"{label} ({self.published_on})" if self.published_on else label

    @classmethod
    def from_db(cls, db, field_names, values):
        source = super().from_db(db, field_names, values)
        # The text as stored: a change of it is checked against the evidence.
        source._stored_text = source.text if "text" in field_names else None
        return source

    def clean(self) -> None:
        stored = getattr(self, "_stored_text", None)
        if self.pk and stored is not None and self.text != stored and self.evidence.exists():
            raise ValidationError({"text": ValidationError(TEXT_LOCKED, code="text_locked")})
        twin = Source.objects.with_text(self.text).exclude(pk=self.pk).values_list("pk", flat=True)
        twin_id = twin.first()
        if twin_id is not None:
            message = f"This text is already stored as source {twin_id}."
            raise ValidationError({"text": ValidationError(message, code="unique")})

    def validate_unique(self, exclude=None) -> None:
        # The digest's uniqueness is the text's, checked by clean() with a
        # message that names the stored source.
        super().validate_unique(exclude={*(exclude or ()), "sha256"})

    def save(self, *args, **kwargs) -> None:
        self.sha256 = self.digest(self.text)
        super().save(*args, **kwargs)
        self._stored_text = self.text

    @staticmethod
    def digest(text: str) -> str:
        """The hex sha256 of the UTF-8 text; DIGEST_SQL is the same in SQL."""
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    # digest() in SQL; defined above the class, where Meta.triggers can use it.
    DIGEST_SQL = DIGEST_SQL

    def misquote(self, start: int, end: int, quote: str) -> str | None:
        """Why `quote` is not this text at [start:end], or None when it is."""
        actual = self.text[start:end]
        if actual == quote:
            return None
        return f"The source text at [{start}:{end}] is “{actual}”."


# The backstop of Evidence.clean(): the quote is the source's text at its offsets.
CHECK_QUOTE = """
    SELECT substr(s.text, NEW.start + 1, NEW."end" - NEW.start) INTO actual
      FROM events_source s WHERE s.id = NEW.source_id;
    IF actual IS DISTINCT FROM NEW.quote OR char_length(NEW.quote) <> NEW."end" - NEW.start THEN
        RAISE EXCEPTION 'Evidence quote is not the text of source % at [%:%].',
            NEW.source_id, NEW.start, NEW."end"
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
"""

# Every event, statement and affiliation cites at least one evidence span,
# checked as the transaction commits: when the record is created
# (RequiresEvidence, on its model) and when evidence leaves it (here).
KEEPS_RECORD_CITED = """
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
"""

REQUIRES_EVIDENCE = """
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I WHERE id = $1)',
                   TG_TABLE_SCHEMA, TG_TABLE_NAME)
        INTO present USING NEW.id;
    IF NOT present THEN
        RETURN NULL;  -- deleted later in the same transaction
    END IF;
    SELECT EXISTS (SELECT 1 FROM events_evidence WHERE {column} = NEW.id) INTO cited;
    IF NOT cited THEN
        RAISE EXCEPTION '% % cites no evidence: every event, statement and affiliation '
                        'needs at least one evidence span.',
            TG_TABLE_NAME, NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
"""


class RequiresEvidence(pgtrigger.Trigger):
    """A new record (event, statement, affiliation) cites at least one
    evidence span by the time its transaction commits: `column` is the
    column of Evidence that points at it."""

    name = "requires_evidence"
    when = pgtrigger.After
    operation = pgtrigger.Insert
    timing = pgtrigger.Deferred
    declare = [("present", "boolean"), ("cited", "boolean")]

    def __init__(self, *, column: str) -> None:
        self.column = column
        super().__init__(func=REQUIRES_EVIDENCE.format(column=quote_name(column)))


@track_history("EvidenceSnapshot", exclude=("search_vector",), db_table="events_evidencesnapshot")
class Evidence(models.Model):
    """A span of a source's text cited by exactly one event, statement or
    affiliation. `quote == source.text[start:end]` always holds: a database
    trigger refuses any row where it does not.
    """

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="evidence")
    start = models.PositiveIntegerField(help_text="Offset of the first character (0-based).")
    end = models.PositiveIntegerField(help_text="Offset just past the last character.")
    quote = models.TextField()
    event = models.ForeignKey(
        "events.Event", on_delete=models.CASCADE, null=True, blank=True, related_name="evidence"
    )
    statement = models.ForeignKey(
        "events.Statement", on_delete=models.CASCADE, null=True, blank=True, related_name="evidence"
    )
    affiliation = models.ForeignKey(
        "actors.Affiliation",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="evidence",
    )

    # The quote's full-text vector, stored: a search checks an event's evidence
    # with an index lookup instead of parsing its quotes again.
    search_vector = models.GeneratedField(
        expression=SearchVector("quote", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        db_table = "events_evidence"
        ordering = ["source_id", "start", "end", "id"]
        verbose_name_plural = "evidence"
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="events_evidence_span"),
            models.CheckConstraint(
                condition=Q(event__isnull=False, statement__isnull=True, affiliation__isnull=True)
                | Q(event__isnull=True, statement__isnull=False, affiliation__isnull=True)
                | Q(event__isnull=True, statement__isnull=True, affiliation__isnull=False),
                name="events_evidence_one_record",
            ),
            models.UniqueConstraint(
                fields=["source", "start", "end", "event", "statement", "affiliation"],
                nulls_distinct=False,
                name="events_evidence_unique_per_record",
            ),
        ]
        indexes = [
            GinIndex(fields=["search_vector"], name="events_evidence_search_vector"),
            models.Index(fields=["event"], name="events_evidence_event"),
            models.Index(fields=["statement"], name="events_evidence_statement"),
            models.Index(fields=["affiliation"], name="events_evidence_affiliation"),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="check_quote",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert
                | pgtrigger.UpdateOf("source_id", "start", "end", "quote"),
                declare=[("actual", "text")],
                func=CHECK_QUOTE,
            ),
            TouchesParent("event", "statement", "affiliation"),
            pgtrigger.Trigger(
                name="keeps_record_cited",
                when=pgtrigger.After,
                operation=pgtrigger.Delete
                | pgtrigger.UpdateOf("event_id", "statement_id", "affiliation_id"),
                timing=pgtrigger.Deferred,
                func=KEEPS_RECORD_CITED,
            ),
        ]

    def __str__(self) -> str:
        return f"“{self.quote}” [{self.start}:{self.end}]"

    def clean(self) -> None:
        if self.source_id is None or self.start is None or self.end is None:
            return
        if self.start >= self.end:
            raise ValidationError({"end": "The span must end after it starts."})
        problem = self.source.misquote(self.start, self.end, self.quote)
        if problem:
            raise ValidationError({"quote": problem})
