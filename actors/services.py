"""Writes to actors. Each function is one transaction and validates what it
stores; the database constraints back every rule up."""

import datetime
from collections.abc import Iterable, Mapping, Sequence

from django.db import transaction

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation
from events.models import DatePrecision
from events.services import Span, evidence_attach


@transaction.atomic
def actor_create(
    *,
    slug: str,
    name: str,
    kind: str,
    country: str = "",
    sector: str = "",
    description: str = "",
    aliases: Iterable[str] = (),
    identifiers: Mapping[str, str] | None = None,
) -> Actor:
    """Create an actor with its aliases and external identifiers."""
    actor = Actor(
        slug=slug, name=name, kind=kind, country=country, sector=sector, description=description
    )
    actor.full_clean()
    actor.save()
    for alias in aliases:
        row = ActorAlias(actor=actor, name=alias)
        row.full_clean()
        row.save()
    for scheme, value in (identifiers or {}).items():
        row = ActorIdentifier(actor=actor, scheme=scheme, value=value)
        row.full_clean()
        row.save()
    return actor


@transaction.atomic
def affiliation_create(
    *,
    member: Actor,
    organization: Actor,
    role: str,
    evidence: Sequence[Span],
    start_date: datetime.date | None = None,
    start_precision: str = DatePrecision.UNKNOWN,
    end_date: datetime.date | None = None,
    end_precision: str = DatePrecision.UNKNOWN,
) -> Affiliation:
    """Record that `member` holds `role` in `organization`, citing `evidence`."""
    affiliation = Affiliation(
        member=member,
        organization=organization,
        role=role,
        start_date=start_date,
        start_precision=start_precision,
        end_date=end_date,
        end_precision=end_precision,
    )
    affiliation.full_clean()
    affiliation.save()
    evidence_attach(record=affiliation, spans=evidence)
    return affiliation
