"""Writes of sources and evidence: a quote located in its source, spans
attached to the record they support."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from django.core.exceptions import ValidationError
from django.db import models, transaction

from ledger.services import ConflictError, model_update, rows_insert
from sources.models import TEXT_LOCKED, Evidence, Source


@dataclass(frozen=True)
class Span:
    """A stretch of a source's text, by character offsets: text[start:end]."""

    source: Source
    start: int
    end: int

    @property
    def quote(self) -> str:
        return self.source.text[self.start : self.end]


def locate_quote(*, text: str, quote: str, occurrence: int | None = None) -> tuple[int, int]:
    """Find `quote` in `text` and return its (start, end) offsets.

    A quote found more than once is ambiguous unless `occurrence` (1 for the
    first match) says which one is meant. Raises ValidationError otherwise.
    """
    if not quote:
        raise ValidationError("The quote is empty.")
    starts = []
    position = text.find(quote)
    while position != -1:
        starts.append(position)
        position = text.find(quote, position + 1)
    if not starts:
        raise ValidationError(f"The quote “{quote}” is not in the source text.")
    if occurrence is None:
        if len(starts) > 1:
            raise ValidationError(
                f"The quote “{quote}” is ambiguous: it occurs {len(starts)} times in the "
                "source text; say which occurrence is meant."
            )
        occurrence = 1
    if not 1 <= occurrence <= len(starts):
        raise ValidationError(
            f"The quote “{quote}” occurs {len(starts)} times; "
            f"occurrence {occurrence} does not exist."
        )
    start = starts[occurrence - 1]
    return start, start + len(quote)


def span_for_quote(*, source: Source, quote: str, occurrence: int | None = None) -> Span:
    start, end = locate_quote(text=source.text, quote=quote, occurrence=occurrence)
    return Span(source=source, start=start, end=end)


def evidence_attach(
    *, record: models.Model, spans: Sequence[Span], created: bool = False
) -> list[Evidence]:
    """Cite `spans` as the evidence of `record` (an event, statement or
    affiliation); `created`: the record was just created and cites nothing yet."""
    if not spans:
        raise ValidationError("At least one evidence span is required.")
    owner_field = cast(str, record._meta.model_name)  # event, statement or affiliation
    cited: set[tuple[int, int, int]] = set()
    if not created:
        # Evidence's reverse accessor, declared by the foreign keys to the apps above this one.
        cited = set(record.evidence.values_list("source_id", "start", "end"))  # type: ignore[attr-defined]
    rows = []
    for span in spans:
        row = Evidence(
            source=span.source,
            start=span.start,
            end=span.end,
            quote=span.quote,
            **{owner_field: record},
        )
        # Fields, the model's own rules and its constraints, like full_clean(),
        # in one query for the whole list: the source and the record are at
        # hand, not looked up again; the span lies in its text (clean()); it
        # cites one record by construction; and it is not cited twice (below).
        # The database enforces each of them regardless.
        row.clean_fields(exclude=["source", owner_field])
        row.clean()
        key = (span.source.pk, span.start, span.end)
        if key in cited:
            raise ValidationError(
                {
                    "evidence": f"The span [{span.start}:{span.end}] of source {span.source.pk} "
                    "is cited twice."
                }
            )
        cited.add(key)
        rows.append(row)
    return rows_insert(Evidence, rows)


@transaction.atomic
def source_create(
    *,
    text: str,
    published_on: datetime.date | None = None,
    title: str = "",
    publisher: str = "",
    url: str = "",
    language: str = "en",
) -> Source:
    """Store a source document; its sha256 is computed from the text."""
    source = Source(
        text=text,
        published_on=published_on,
        title=title,
        publisher=publisher,
        url=url,
        language=language,
    )
    source.full_clean()
    source.save()
    return source


def evidence_replace(*, record: models.Model, spans: Sequence[Span]) -> list[Evidence]:
    """Make `spans` the whole evidence of `record`; the same spans again
    change nothing."""
    if not spans:
        raise ValidationError("At least one evidence span is required.")
    # Evidence's reverse accessor, declared by the foreign keys to the apps above this one.
    cited = record.evidence  # type: ignore[attr-defined]
    current = list(cited.all())
    if sorted((e.source_id, e.start, e.end) for e in current) == sorted(
        (span.source.pk, span.start, span.end) for span in spans
    ):
        return current
    cited.all().delete()
    return evidence_attach(record=record, spans=spans)


@transaction.atomic
def source_update(*, source: Source, fields: dict) -> Source:
    """Change a source's metadata, or its text while no evidence points into it
    (a conflict with the stored evidence: ConflictError)."""
    try:
        model_update(instance=source, fields=fields)
    except ValidationError as exc:
        if any(error.code == "text_locked" for error in exc.error_dict.get("text", [])):
            raise ConflictError(TEXT_LOCKED) from None
        raise
    return source
