"""Writes to sources, evidence, places, events and statements. Each function is
one transaction and validates what it stores; the database constraints and
triggers back every rule up."""

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models, transaction

from events.models import (
    Event,
    EventParticipant,
    EventStatus,
    Evidence,
    Place,
    ReviewStatus,
    Source,
    Statement,
    StatementActor,
    StatementActorRole,
)
from ledger.models import DatePrecision
from ledger.services import ConflictError, apply_fields


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


def evidence_attach(*, record: models.Model, spans: Sequence[Span]) -> list[Evidence]:
    """Cite `spans` as the evidence of `record` (an event, statement or affiliation)."""
    if not spans:
        raise ValidationError("At least one evidence span is required.")
    owner_field = record._meta.model_name  # event, statement or affiliation
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
        # but the source and the record are not looked up again: both are at
        # hand, and a thousand items would cost a thousand queries.
        row.clean_fields(exclude=["source", owner_field])
        row.clean()
        row.validate_constraints()
        rows.append(row)
    return Evidence.objects.bulk_create(rows)


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
    source.sha256 = Source.digest(text)
    source.full_clean()
    source.save()
    return source


@transaction.atomic
def place_create(
    *,
    slug: str,
    name: str,
    kind: str,
    country: str = "",
    latitude: Decimal | float | None = None,
    longitude: Decimal | float | None = None,
    geonames_id: int | None = None,
) -> Place:
    """Create a place; coordinates are stored as decimals, so a float such as
    50.8503 keeps exactly the digits it was written with."""

    def decimal(value: Decimal | float | None) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    latitude, longitude = decimal(latitude), decimal(longitude)
    place = Place(
        slug=slug,
        name=name,
        kind=kind,
        country=country,
        latitude=latitude,
        longitude=longitude,
        geonames_id=geonames_id,
    )
    place.full_clean()
    place.save()
    return place


@transaction.atomic
def event_create(
    *,
    type: str,
    title: str,
    participants: Iterable[tuple[models.Model, str]],
    evidence: Sequence[Span],
    date_start: datetime.date | None = None,
    date_end: datetime.date | None = None,
    date_precision: str = DatePrecision.DAY,
    status: str = EventStatus.OCCURRED,
    summary: str = "",
    mode: str = "",
    context: Sequence[str] = (),
    place: Place | None = None,
    place_text: str = "",
    review_status: str = ReviewStatus.DRAFT,
) -> Event:
    """Create an event with its participants, given as (actor, role) pairs, and
    the evidence spans it cites."""
    event = Event(
        type=type,
        title=title,
        date_start=date_start,
        date_end=date_end,
        date_precision=date_precision,
        status=status,
        summary=summary,
        mode=mode,
        context=list(context),
        place=place,
        place_text=place_text,
        review_status=review_status,
    )
    event.full_clean()
    event.save()
    _replace_participants(event, participants)
    evidence_attach(record=event, spans=evidence)
    return event


@transaction.atomic
def statement_create(
    *,
    speaker: models.Model,
    kind: str,
    content: str,
    evidence: Sequence[Span],
    quote: str = "",
    stance: str = "",
    date_start: datetime.date | None = None,
    date_end: datetime.date | None = None,
    date_precision: str = DatePrecision.DAY,
    targets: Iterable[models.Model] = (),
    about_actors: Iterable[models.Model] = (),
    about_events: Iterable[Event] = (),
    review_status: str = ReviewStatus.DRAFT,
) -> Statement:
    """Create a statement citing `evidence`. A verbatim `quote` must appear
    inside one of the cited spans, so it is checkable against the source."""
    if quote and not any(quote in span.quote for span in evidence):
        raise ValidationError({"quote": f"The quote “{quote}” is not inside any cited span."})
    statement = Statement(
        speaker=speaker,
        kind=kind,
        content=content,
        quote=quote,
        stance=stance,
        date_start=date_start,
        date_end=date_end,
        date_precision=date_precision,
        review_status=review_status,
    )
    statement.full_clean()
    statement.save()
    _replace_statement_actors(statement, StatementActorRole.TARGET, targets)
    _replace_statement_actors(statement, StatementActorRole.ABOUT, about_actors)
    statement.about_events.set(about_events)
    evidence_attach(record=statement, spans=evidence)
    return statement


def evidence_replace(*, record: models.Model, spans: Sequence[Span]) -> list[Evidence]:
    """Make `spans` the whole evidence of `record`; the same spans again
    change nothing."""
    if not spans:
        raise ValidationError("At least one evidence span is required.")
    current = list(record.evidence.all())
    if sorted((e.source_id, e.start, e.end) for e in current) == sorted(
        (span.source.pk, span.start, span.end) for span in spans
    ):
        return current
    record.evidence.all().delete()
    return evidence_attach(record=record, spans=spans)


@transaction.atomic
def source_update(*, source: Source, fields: dict) -> Source:
    """Change a source's metadata, or its text while no evidence points into it."""
    if "text" in fields and fields["text"] != source.text and source.evidence.exists():
        raise ConflictError(
            "The text of this source cannot change: evidence spans point into it, and "
            "changing it would break them. Store the new version as a new source."
        )
    if "text" in fields:
        fields = {**fields, "sha256": Source.digest(fields["text"])}
    apply_fields(source, fields)
    return source


@transaction.atomic
def place_update(*, place: Place, fields: dict) -> Place:
    apply_fields(place, fields)
    return place


@transaction.atomic
def place_delete(*, place: Place) -> None:
    """Delete a place no event refers to (ProtectedError otherwise)."""
    place.delete()


def _replace_participants(event: Event, participants: Iterable[tuple[models.Model, str]]) -> None:
    """Make `participants` the event's, in that order; the same list again
    changes nothing."""
    participants = list(participants)
    current = list(event.participants.order_by("id").values_list("actor_id", "role"))
    if current == [(actor.pk, role) for actor, role in participants]:
        return
    event.participants.all().delete()
    for actor, role in participants:
        participant = EventParticipant(event=event, actor=actor, role=role)
        participant.full_clean()
        participant.save()


@transaction.atomic
def event_update(
    *,
    event: Event,
    fields: dict,
    participants: Iterable[tuple[models.Model, str]] | None = None,
    evidence: Sequence[Span] | None = None,
) -> Event:
    """Change an event's fields; participants and evidence, when given, replace
    the current ones."""
    if "context" in fields:
        fields = {**fields, "context": list(fields["context"])}
    apply_fields(event, fields)
    if participants is not None:
        _replace_participants(event, participants)
    if evidence is not None:
        evidence_replace(record=event, spans=evidence)
    return event


@transaction.atomic
def event_delete(*, event: Event) -> None:
    """Delete an event with its participants and evidence."""
    event.delete()


def _replace_statement_actors(
    statement: Statement, role: str, actors: Iterable[models.Model]
) -> None:
    """Make `actors` the statement's actors in `role`, in that order; the same
    list again changes nothing."""
    actors = list(actors)
    links = statement.actor_links.filter(role=role)
    if list(links.order_by("id").values_list("actor_id", flat=True)) == [a.pk for a in actors]:
        return
    links.delete()
    StatementActor.objects.bulk_create(
        [StatementActor(statement=statement, actor=actor, role=role) for actor in actors]
    )


@transaction.atomic
def statement_update(
    *,
    statement: Statement,
    fields: dict,
    targets: Iterable[models.Model] | None = None,
    about_actors: Iterable[models.Model] | None = None,
    about_events: Iterable[Event] | None = None,
    evidence: Sequence[Span] | None = None,
) -> Statement:
    """Change a statement; each list given replaces the current one."""
    apply_fields(statement, fields)
    if targets is not None:
        _replace_statement_actors(statement, StatementActorRole.TARGET, targets)
    if about_actors is not None:
        _replace_statement_actors(statement, StatementActorRole.ABOUT, about_actors)
    if about_events is not None:
        statement.about_events.set(about_events)
    if evidence is not None:
        evidence_replace(record=statement, spans=evidence)
    if statement.quote and not any(
        statement.quote in quote for quote in statement.evidence.values_list("quote", flat=True)
    ):
        raise ValidationError(
            {"quote": f"The quote “{statement.quote}” is not inside any cited span."}
        )
    return statement


@transaction.atomic
def statement_delete(*, statement: Statement) -> None:
    statement.delete()
