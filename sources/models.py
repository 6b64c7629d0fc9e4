"""Sources: the documents facts come from, with their full text, and the
evidence spans that cite their exact words."""

import hashlib

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


# Tables keep the names they had in the events app, where these models began.
@track_history("SourceSnapshot", db_table="events_sourcesnapshot")
class Source(Revisioned):
    """A document facts come from. Its full text is kept so that every evidence
    span stays checkable; `sha256` is the hex digest of the UTF-8 text, kept
    current by a database trigger whatever path writes the row. The text cannot
    change while evidence points into it (also enforced by a trigger).
    """

    title = models.CharField(max_length=500, blank=True)
    publisher = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    published_on = models.DateField(null=True, blank=True)
    language = models.CharField(max_length=35, default="en", help_text="BCP 47 tag, e.g. en.")
    text = models.TextField()
    sha256 = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "events_source"
        ordering = ["-published_on", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="events_source_text_not_empty"),
        ]

    def __str__(self) -> str:
        label = self.title or self.text[:60]
        return f"{label} ({self.published_on})" if self.published_on else label

    def save(self, *args, **kwargs) -> None:
        self.sha256 = self.digest(self.text)
        super().save(*args, **kwargs)

    @staticmethod
    def digest(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


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

    def __str__(self) -> str:
        return f"“{self.quote}” [{self.start}:{self.end}]"

    def clean(self) -> None:
        if self.source_id is None or self.start is None or self.end is None:
            return
        if self.start >= self.end:
            raise ValidationError({"end": "The span must end after it starts."})
        actual = self.source.text[self.start : self.end]
        if actual != self.quote:
            raise ValidationError(
                {"quote": f"The source text at [{self.start}:{self.end}] is “{actual}”."}
            )
