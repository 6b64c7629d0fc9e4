"""Finding the actors and places an annotation names among those stored.

The same rules serve the documents endpoint and `manage.py seed`: an actor is
found by an identifier (any scheme), then by its slug, then by its exact name
or one of its aliases, case and diacritics aside.
A near match that is not exact is only suggested, never taken. A record found
gains what the annotation adds (new aliases and identifiers, a description
where it has none); a different value for what it already has is a conflict,
reported with both records named.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from rapidfuzz import fuzz

from actors.models import (
    IDENTIFIER_SCHEMES,
    Actor,
    ActorAlias,
    folded,
    folded_sql,
    normalized_identifier,
)
from events.models import Place

_NOT_WORD = re.compile(r"[\W_]+")
SUGGESTION_CUTOFF = 0.8


def loose(text: str) -> str:
    """Letters and digits only, folded: "U.S.A." and "usa" look alike."""
    return _NOT_WORD.sub("", folded(text))


def describe(record: Actor | Place) -> str:
    """A record as a curator recognises it: slug, name and identifiers."""
    label = f"`{record.slug}` ({record.name}, id {record.pk}"
    if isinstance(record, Actor):
        for scheme, value in record.identifiers.values_list("scheme", "value"):
            label += f", {scheme} {value}"
    elif record.geonames_id:
        label += f", geonames {record.geonames_id}"
    return label + ")"


@dataclass
class Found:
    """What resolution decided for one declaration."""

    record: Any = None  # the stored record, or None: a new one is to be made
    by: str = ""  # how it was found
    additions: dict[str, Any] = field(default_factory=dict)  # field -> what to add
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (field, message)
    suggestions: list[str] = field(default_factory=list)


# Actors -------------------------------------------------------------------------


def stored_by_reference(
    model: Any, reference: Any, by_identifier: Callable[[str, str], tuple[bool, Any]]
) -> Any:
    """A stored record named by id (a number or digits), by `scheme:value` when
    `by_identifier` knows the scheme (it answers (known, record)), or by slug;
    None when there is none."""
    if isinstance(reference, bool) or not isinstance(reference, int | str):
        return None
    if isinstance(reference, int) or reference.isdigit():
        return live(model.objects.filter(pk=int(reference)).first())
    scheme, _, value = reference.partition(":")
    if value:
        known, record = by_identifier(scheme, value)
        if known:
            return live(record)
    return live(model.objects.filter(slug=reference).first())


def live(record: Any) -> Any:
    """The record itself, or for a merged one (ledger.merging) the record it
    was merged into."""
    if record is not None and record.merged_into_id is not None:
        return type(record).objects.get(pk=record.merged_into_id)
    return record


def actor_by_reference(reference: Any) -> Actor | None:
    """An existing actor named by id, identifier (`wikidata:Q399`) or slug."""

    def by_identifier(scheme: str, value: str) -> tuple[bool, Actor | None]:
        if scheme not in IDENTIFIER_SCHEMES:
            return False, None
        try:
            scheme, value = normalized_identifier(scheme, value)
        except ValidationError:  # not of the scheme's form: no actor holds it
            return True, None
        return True, Actor.objects.with_identifier(scheme, value).first()

    return stored_by_reference(Actor, reference, by_identifier)


def find_actor(declaration: dict) -> Found:
    """Resolve an actor declaration (key, name, aliases, identifiers, ...)."""
    identifiers = {}
    for scheme, value in (declaration.get("identifiers") or {}).items():
        try:
            scheme, value = normalized_identifier(str(scheme), str(value))
        except ValidationError:
            continue  # reported when the record is written
        identifiers[scheme] = value
    found = Found()
    holders = {}
    for scheme, value in identifiers.items():
        holder = Actor.objects.with_identifier(scheme, value).first()
        if holder is not None:
            holders[(scheme, value)] = holder
    distinct = {holder.pk: holder for holder in holders.values()}
    if len(distinct) > 1:
        named = "; ".join(
            f"{scheme} {value} is held by {describe(holder)}"
            for (scheme, value), holder in holders.items()
        )
        found.conflicts.append(("identifiers", f"The identifiers name different actors: {named}."))
        return found
    if distinct:
        (scheme, value), holder = next(iter(holders.items()))
        found.record, found.by = holder, f"identifier {scheme}:{value}"
    elif declaration.get("key") and (
        actor := live(Actor.objects.filter(slug=declaration["key"]).first())
    ):
        found.record, found.by = actor, "slug"
    else:
        found.record, found.by = _actor_by_name(declaration)
    if found.record is None:
        found.suggestions = _actor_suggestions(declaration)
        return found
    _merge_actor(found, declaration, identifiers)
    return found


def _actor_by_name(declaration: dict) -> tuple[Actor | None, str]:
    names = [declaration.get("name") or "", *(declaration.get("aliases") or [])]
    wanted = sorted({folded(str(name)) for name in names if name})
    if not wanted:
        return None, ""
    by_name = Actor.objects.alias(folded_name=folded_sql("name")).filter(
        folded_name__in=wanted, merged_into__isnull=True
    )
    by_alias = ActorAlias.objects.alias(folded_name=folded_sql("name")).filter(
        folded_name__in=wanted
    )
    # Unordered in SQL, so that the folded-name index is used; the oldest wins.
    for actor in sorted(by_name.order_by()[:20], key=lambda a: a.pk):
        if folded(actor.name) in wanted:
            return actor, "name"
    for alias in sorted(by_alias.select_related("actor").order_by()[:20], key=lambda a: a.actor_id):
        if folded(alias.name) in wanted:
            return alias.actor, "alias"
    return None, ""


def _actor_suggestions(declaration: dict) -> list[str]:
    name = str(declaration.get("name") or declaration.get("key") or "")
    target = loose(name)
    if not target:
        return []
    head = name.strip()[:2]
    # Two queries on the prefix indexes, not one across a join, then the
    # candidates' names and aliases as plain rows: scoring a few hundred
    # candidates must not cost building a few hundred records.
    by_name = (
        Actor.objects.filter(Q(name__istartswith=head) | Q(slug__startswith=head.lower()))
        .order_by()
        .values_list("pk", flat=True)[:200]
    )
    by_alias = (
        ActorAlias.objects.filter(name__istartswith=head)
        .order_by()
        .values_list("actor_id", flat=True)[:200]
    )
    candidates = {*by_name, *by_alias}
    forms: dict[int, list[str]] = {}
    live_candidates = Actor.objects.filter(pk__in=candidates, merged_into__isnull=True)
    for pk, actor_name, slug in live_candidates.values_list("pk", "name", "slug"):
        forms[pk] = [actor_name, slug]
    for actor_id, alias in ActorAlias.objects.filter(actor_id__in=candidates).values_list(
        "actor_id", "name"
    ):
        forms.setdefault(actor_id, []).append(alias)
    close = []
    for pk, names in sorted(forms.items()):
        # The share of characters in common, in order (0 to 100), as difflib's
        # ratio() but in C: a few hundred candidates cost well under a millisecond.
        score = max(fuzz.ratio(target, loose(form)) for form in names)
        if score >= SUGGESTION_CUTOFF * 100:
            close.append(pk)
    return [
        f"“{name}” looks like existing {describe(actor)}; to use it, refer to it by "
        f"its slug or an identifier, or give the same identifier here."
        for actor in Actor.objects.filter(pk__in=close[:3]).order_by("pk")
    ]


def _merge_actor(found: Found, declaration: dict, identifiers: dict[str, str]) -> None:
    actor: Actor = found.record
    known_names = {folded(actor.name)} | {
        folded(a) for a in actor.aliases.values_list("name", flat=True)
    }
    new_aliases = []
    for name in [declaration.get("name"), *(declaration.get("aliases") or [])]:
        if name and folded(str(name)) not in known_names:
            new_aliases.append(str(name))
            known_names.add(folded(str(name)))
    if new_aliases:
        found.additions["aliases"] = new_aliases
    held = dict(actor.identifiers.values_list("scheme", "value"))
    for scheme, value in identifiers.items():
        if scheme in held and held[scheme] != value:
            found.conflicts.append(
                (
                    "identifiers",
                    f"{describe(actor)} has {scheme} {held[scheme]}, the annotation {value}.",
                )
            )
        elif scheme not in held:
            other = Actor.objects.with_identifier(scheme, value).exclude(pk=actor.pk).first()
            if other is not None:
                found.conflicts.append(
                    ("identifiers", f"{scheme} {value} is held by {describe(other)}.")
                )
            else:
                found.additions.setdefault("identifiers", {})[scheme] = value
    for name in ("kind", "country", "sector"):
        value = declaration.get(name)
        if value and getattr(actor, name) and getattr(actor, name) != value:
            found.conflicts.append(
                (name, f"{describe(actor)} has {name} {getattr(actor, name)!r}, not {value!r}.")
            )
        elif value and not getattr(actor, name):
            found.additions[name] = value
    description = declaration.get("description")
    if description and not actor.description:
        found.additions["description"] = description
    elif description and folded(description) != folded(actor.description):
        found.conflicts.append(
            ("description", f"{describe(actor)} has another description: “{actor.description}”.")
        )


# Places -------------------------------------------------------------------------


def place_by_reference(reference: Any) -> Place | None:
    """An existing place named by id, `geonames:<id>` or slug."""

    def by_identifier(scheme: str, value: str) -> tuple[bool, Place | None]:
        if scheme != "geonames" or not value.isdigit():
            return False, None
        return True, Place.objects.filter(geonames_id=int(value)).first()

    return stored_by_reference(Place, reference, by_identifier)


def find_place(declaration: dict) -> Found:
    """Resolve a place declaration: by GeoNames id, slug, then exact name in
    the same country."""
    found = Found()
    geonames = declaration.get("geonames_id")
    place = None
    if isinstance(geonames, int) and not isinstance(geonames, bool):
        place = live(Place.objects.filter(geonames_id=geonames).first())
        found.by = f"identifier geonames:{geonames}"
    if place is None and declaration.get("key"):
        place = live(Place.objects.filter(slug=declaration["key"]).first())
        found.by = "slug"
    if place is None and declaration.get("name"):
        wanted = folded(str(declaration["name"]))
        country = declaration.get("country") or ""
        named = Place.objects.filter(
            name__iexact=str(declaration["name"]).strip(), merged_into__isnull=True
        )
        for candidate in named:
            if folded(candidate.name) == wanted and (candidate.country or "") == country:
                place, found.by = candidate, "name"
                break
    if place is None:
        found.by = ""
        return found
    found.record = place
    for name in ("kind", "country", "geonames_id", "latitude", "longitude"):
        value = declaration.get(name)
        current = getattr(place, name)
        if value in (None, ""):
            continue
        if current in (None, ""):
            found.additions[name] = value
        elif str(current) != str(value) and not _same_number(current, value):
            found.conflicts.append(
                (name, f"{describe(place)} has {name} {current}, the annotation {value}.")
            )
    return found


def _same_number(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False
