"""Writes to actors. Each function is one transaction and validates what it
stores; the database constraints back every rule up."""

import datetime
from collections.abc import Iterable, Mapping, Sequence

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Q

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation, folded
from ledger import merging
from ledger.merging import MergeConflict
from ledger.models import DatePrecision, left_to_database
from ledger.services import model_update, rows_insert, unique_slug
from sources.services import Span, evidence_attach, evidence_replace


@transaction.atomic
def actor_create(
    *,
    slug: str = "",
    name: str,
    kind: str,
    country: str = "",
    sector: str = "",
    description: str = "",
    aliases: Iterable[str] = (),
    identifiers: Mapping[str, str] | None = None,
) -> Actor:
    """Create an actor with its aliases and external identifiers; without a
    slug, one is made from the name."""
    slug = slug or unique_slug(Actor, name)
    actor = Actor(
        slug=slug, name=name, kind=kind, country=country, sector=sector, description=description
    )
    actor.full_clean()
    actor.save()
    _add_aliases(actor, aliases)
    _add_identifiers(actor, identifiers or {})
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
    evidence_attach(record=affiliation, spans=evidence, created=True)
    return affiliation


def _replace_aliases(actor: Actor, aliases: Iterable[str]) -> None:
    """Make `aliases` the actor's (shown by name); the same names again change nothing."""
    aliases = list(aliases)
    if sorted(actor.aliases.values_list("name", flat=True)) == sorted(aliases):
        return
    actor.aliases.all().delete()
    _add_aliases(actor, aliases)


def _add_aliases(actor: Actor, aliases: Iterable[str]) -> None:
    """Give `actor`, which has no aliases, `aliases`, in one statement."""
    rows, seen = [], set()
    for alias in aliases:
        row = ActorAlias(actor=actor, name=alias)
        # Fields and rules, as full_clean() checks them, without a query: the
        # actor is at hand, a name is not empty (its field's rule, which the
        # check constraint backs up), and with no other alias the unique pair
        # can only repeat within the list (the database enforces all of them
        # regardless).
        row.full_clean(exclude=["actor"], validate_constraints=False)
        if alias in seen:
            raise _repeated(row, ["actor", "name"])
        seen.add(alias)
        rows.append(row)
    rows_insert(ActorAlias, rows)


def _repeated(row: ActorAlias | ActorIdentifier, fields: list[str]) -> ValidationError:
    """The error full_clean() gives a row repeating a unique pair."""
    return ValidationError({NON_FIELD_ERRORS: [row.unique_error_message(type(row), fields)]})


def _replace_identifiers(actor: Actor, identifiers: Mapping[str, str]) -> None:
    """Make `identifiers` the actor's; the same ones again change nothing."""
    if dict(actor.identifiers.values_list("scheme", "value")) == dict(identifiers):
        return
    actor.identifiers.all().delete()
    _add_identifiers(actor, identifiers)


def _add_identifiers(actor: Actor, identifiers: Mapping[str, str]) -> None:
    """Give `actor`, which has no identifiers, `identifiers`, in one statement."""
    rows, schemes = [], set()
    for scheme, value in identifiers.items():
        row = ActorIdentifier(actor=actor, scheme=scheme, value=value)
        # Fields and rules, as full_clean() checks them, with one query: the
        # actor is at hand; clean() (a known scheme, a value of its form, in
        # canonical case) is what the check constraints back up; another
        # actor may hold the value (queried, as full_clean() does, unless
        # left to the database: ledger.models.checks_left_to_database); and with
        # no other identifier, one per scheme can only repeat within the list.
        errors: dict = {}
        try:
            row.full_clean(exclude=["actor"], validate_constraints=False)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if not errors.keys() & {"scheme", "value"} and not left_to_database(_HELD_ONCE):
            try:
                _HELD_ONCE.validate(ActorIdentifier, row)
            except ValidationError as error:
                errors = error.update_error_dict(errors)
        if "scheme" not in errors and row.scheme in schemes:
            errors = _repeated(row, ["actor", "scheme"]).update_error_dict(errors)
        if errors:
            raise ValidationError(errors)
        schemes.add(row.scheme)
        rows.append(row)
    rows_insert(ActorIdentifier, rows)


# The identifier's constraint that rows of other actors can break.
_HELD_ONCE = next(
    constraint
    for constraint in ActorIdentifier._meta.constraints
    if constraint.name == "actors_identifier_value_unique"
)


@transaction.atomic
def actor_update(
    *,
    actor: Actor,
    fields: dict,
    aliases: Iterable[str] | None = None,
    identifiers: Mapping[str, str] | None = None,
) -> Actor:
    """Change an actor; aliases and identifiers, when given, replace the current ones."""
    model_update(instance=actor, fields=fields)
    if aliases is not None:
        _replace_aliases(actor, aliases)
    if identifiers is not None:
        _replace_identifiers(actor, identifiers)
    return actor


@transaction.atomic
def actor_delete(*, actor: Actor) -> None:
    """Delete an actor that no event, statement or affiliation refers to
    (ProtectedError otherwise). Its id is never reused."""
    actor.delete()


@transaction.atomic
def affiliation_update(
    *, affiliation: Affiliation, fields: dict, evidence: Sequence[Span] | None = None
) -> Affiliation:
    model_update(instance=affiliation, fields=fields)
    if evidence is not None:
        evidence_replace(record=affiliation, spans=evidence)
    return affiliation


@transaction.atomic
def affiliation_delete(*, affiliation: Affiliation) -> None:
    affiliation.delete()


def _mergeable(actor: Actor, into: Actor) -> None:
    """Refuse what merging `actor` into `into` cannot do."""
    _distinct_identifiers(actor, into)
    _not_affiliated(actor, into)


def _not_affiliated(actor: Actor, into: Actor) -> None:
    """Refuse to merge two actors affiliated with each other: the merge would
    make an actor its own member."""
    between = Affiliation.objects.filter(
        Q(member=actor, organization=into) | Q(member=into, organization=actor)
    ).first()
    if between is not None:
        raise MergeConflict(
            f"{actor.slug} (id {actor.pk}) and {into.slug} (id {into.pk}) are affiliated with "
            f"each other (affiliation {between.pk}: {between.role}): merged, the actor would be "
            "its own member. Remove that affiliation first, or do not merge them."
        )


def _distinct_identifiers(actor: Actor, into: Actor) -> None:
    """Refuse to merge two actors holding different values of one scheme:
    they are likely two actors, and one identifier would be lost."""
    held = dict(into.identifiers.values_list("scheme", "value"))
    for scheme, value in actor.identifiers.values_list("scheme", "value"):
        if scheme in held and held[scheme] != value:
            raise MergeConflict(
                f"Both actors hold an identifier of scheme {scheme}: {actor.slug} (id "
                f"{actor.pk}) has {value}, {into.slug} (id {into.pk}) has {held[scheme]}. "
                "Remove the wrong one first, or do not merge them."
            )


@transaction.atomic
def actor_merge(*, actor: Actor, into: Actor) -> dict:
    """Merge `actor`, a duplicate, into `into` (ledger.merging): its
    participations, statements, statement links, affiliations, aliases and
    identifiers move to `into`, and its name becomes one of `into`'s aliases.
    Both rows are locked by the caller."""
    done = merging.merge(actor, into, check=_mergeable)
    if _name_is_new_to(actor, into):
        alias = ActorAlias(actor=into, name=actor.name)
        alias.full_clean()
        alias.save()
        done["created"] = {ActorAlias._meta.label: [alias.pk]}
        actor.save(update_fields=["merge"])
    return done


def actor_merge_preview(*, actor: Actor, into: Actor) -> dict:
    """What actor_merge(actor=actor, into=into) would do now
    (ledger.merging.preview), with `notes` on what it would add."""
    preview = merging.preview(actor, into, check=_mergeable)
    preview["notes"] = []
    if not preview["refused"] and _name_is_new_to(actor, into):
        preview["notes"].append(f"Its name “{actor.name}” becomes an alias of {into.name}.")
    return preview


def _name_is_new_to(actor: Actor, into: Actor) -> bool:
    """`actor`'s name is neither `into`'s name nor one of its aliases."""
    held = {folded(into.name), *(folded(a) for a in alias_names(into))}
    return folded(actor.name) not in held


@transaction.atomic
def actor_unmerge(*, actor: Actor) -> dict:
    """Undo `actor`'s merge (ledger.merging.unmerge), and the alias it gave."""
    return merging.unmerge(actor)


def alias_names(actor: Actor) -> list[str]:
    return list(ActorAlias.objects.filter(actor=actor).values_list("name", flat=True))
