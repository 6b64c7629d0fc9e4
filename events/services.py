"""Writes to places, events and statements (with their evidence). Each function is
one transaction and validates what it stores; the database constraints and
triggers back every rule up."""

import datetime
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from actors.models import Actor
from events.models import (
    Event,
    EventParticipant,
    EventStatus,
    Place,
    ReviewStatus,
    Statement,
    StatementActor,
    StatementActorRole,
    StatementEvent,
)
from ledger import merging
from ledger.merging import MergeConflict
from ledger.models import DatePrecision
from ledger.services import model_update, rows_insert, unique_slug
from sources.services import Span, evidence_attach, evidence_replace


@transaction.atomic
def place_create(
    *,
    slug: str = "",
    name: str,
    kind: str,
    country: str = "",
    latitude: Decimal | float | None = None,
    longitude: Decimal | float | None = None,
    geonames_id: int | None = None,
) -> Place:
    """Create a place; coordinates are stored as decimals, so a float such as
    50.8503 keeps exactly the digits it was written with. Without a slug, one
    is made from the name."""
    slug = slug or unique_slug(Place, name)

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
    participants: Iterable[tuple[Actor, str]],
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
    _add_participants(event, participants)
    evidence_attach(record=event, spans=evidence, created=True)
    return event


@transaction.atomic
def statement_create(
    *,
    speaker: Actor,
    kind: str,
    content: str,
    evidence: Sequence[Span],
    quote: str = "",
    stance: str = "",
    date_start: datetime.date | None = None,
    date_end: datetime.date | None = None,
    date_precision: str = DatePrecision.DAY,
    targets: Iterable[Actor] = (),
    about_actors: Iterable[Actor] = (),
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
    _add_statement_actors(statement, StatementActorRole.TARGET, targets)
    _add_statement_actors(statement, StatementActorRole.ABOUT, about_actors)
    # As about_events.set() on a statement about none yet, without its query.
    rows_insert(
        StatementEvent,
        [StatementEvent(statement=statement, event=event) for event in dict.fromkeys(about_events)],
    )
    evidence_attach(record=statement, spans=evidence, created=True)
    return statement


@transaction.atomic
def place_update(*, place: Place, fields: dict) -> Place:
    model_update(instance=place, fields=fields)
    return place


@transaction.atomic
def place_delete(*, place: Place) -> None:
    """Delete a place no event refers to (ProtectedError otherwise)."""
    place.delete()


def _replace_participants(event: Event, participants: Iterable[tuple[Actor, str]]) -> None:
    """Make `participants` the event's, in that order; the same list again
    changes nothing."""
    participants = list(participants)
    current = list(event.participants.order_by("id").values_list("actor_id", "role"))
    if current == [(actor.pk, role) for actor, role in participants]:
        return
    event.participants.all().delete()
    _add_participants(event, participants)


def _add_participants(event: Event, participants: Iterable[tuple[Actor, str]]) -> None:
    """Give `event`, which has no participants, `participants`, in that order."""
    rows, seen = [], set()
    for actor, role in participants:
        if (actor.pk, role) in seen:
            raise ValidationError(
                {"participants": f"{actor} takes part as {role or 'no role'} twice."}
            )
        seen.add((actor.pk, role))
        row = EventParticipant(event=event, actor=actor, role=role)
        # Fields and rules, as full_clean() checks them, without a query: the
        # event and the actor are at hand, the role's choices are its check
        # constraint, and with the old rows gone the unique triple can only
        # repeat within the list (the database enforces all three regardless).
        row.clean_fields(exclude=["event", "actor"])
        row.clean()
        rows.append(row)
    rows_insert(EventParticipant, rows)


@transaction.atomic
def event_update(
    *,
    event: Event,
    fields: dict,
    participants: Iterable[tuple[Actor, str]] | None = None,
    evidence: Sequence[Span] | None = None,
) -> Event:
    """Change an event's fields; participants and evidence, when given, replace
    the current ones."""
    if "context" in fields:
        fields = {**fields, "context": list(fields["context"])}
    model_update(instance=event, fields=fields)
    if participants is not None:
        _replace_participants(event, participants)
    if evidence is not None:
        evidence_replace(record=event, spans=evidence)
    return event


@transaction.atomic
def event_delete(*, event: Event) -> None:
    """Delete an event with its participants and evidence."""
    event.delete()


def _replace_statement_actors(statement: Statement, role: str, actors: Iterable[Actor]) -> None:
    """Make `actors` the statement's actors in `role`, in that order; the same
    list again changes nothing."""
    actors = list(actors)
    links = statement.actor_links.filter(role=role)
    if list(links.order_by("id").values_list("actor_id", flat=True)) == [a.pk for a in actors]:
        return
    links.delete()
    _add_statement_actors(statement, role, actors)


def _add_statement_actors(statement: Statement, role: str, actors: Iterable[Actor]) -> None:
    """Give `statement`, which has no actors in `role`, `actors`, in that order."""
    rows_insert(
        StatementActor,
        [StatementActor(statement=statement, actor=actor, role=role) for actor in actors],
    )


@transaction.atomic
def statement_update(
    *,
    statement: Statement,
    fields: dict,
    targets: Iterable[Actor] | None = None,
    about_actors: Iterable[Actor] | None = None,
    about_events: Iterable[Event] | None = None,
    evidence: Sequence[Span] | None = None,
) -> Statement:
    """Change a statement; each list given replaces the current one."""
    model_update(instance=statement, fields=fields)
    if targets is not None:
        _replace_statement_actors(statement, StatementActorRole.TARGET, targets)
    if about_actors is not None:
        _replace_statement_actors(statement, StatementActorRole.ABOUT, about_actors)
    if about_events is not None:
        statement.about_events.set(about_events)
    if evidence is not None:
        evidence_replace(record=statement, spans=evidence)
    # The evidence it cites now: the spans given, which replaced the stored
    # ones (not read back: they may not be written yet, as inside
    # ledger.services.rows_written_together).
    cited = (
        [span.quote for span in evidence]
        if evidence is not None
        else statement.evidence.values_list("quote", flat=True)
    )
    if statement.quote and not any(statement.quote in quote for quote in cited):
        raise ValidationError(
            {"quote": f"The quote “{statement.quote}” is not inside any cited span."}
        )
    return statement


@transaction.atomic
def statement_delete(*, statement: Statement) -> None:
    statement.delete()


def _one_geonames_id(place: Place, into: Place) -> None:
    """Refuse to merge two places with different GeoNames ids: they are two places."""
    if place.geonames_id and into.geonames_id and place.geonames_id != into.geonames_id:
        raise MergeConflict(
            f"The places have different GeoNames ids: {place.slug} (id {place.pk}) "
            f"{place.geonames_id}, {into.slug} (id {into.pk}) {into.geonames_id}."
        )


@transaction.atomic
def place_merge(*, place: Place, into: Place) -> dict:
    """Merge `place`, a duplicate, into `into` (ledger.merging): the events
    that happened there move to `into`. Both rows are locked by the caller."""
    return merging.merge(place, into, check=_one_geonames_id)


def place_merge_preview(*, place: Place, into: Place) -> dict:
    """What place_merge(place=place, into=into) would do now (ledger.merging.preview)."""
    return {**merging.preview(place, into, check=_one_geonames_id), "notes": []}


@transaction.atomic
def place_unmerge(*, place: Place) -> dict:
    return merging.unmerge(place)
