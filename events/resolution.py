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
from django.db.models import Q, Value
from django.db.models.expressions import RawSQL
from rapidfuzz import fuzz

from actors.models import (
    IDENTIFIER_SCHEMES,
    Actor,
    ActorAlias,
    ActorIdentifier,
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


def describe(record: Actor | Place, identifiers: dict[str, str] | None = None) -> str:
    """A record as a curator recognises it: slug, name and identifiers (an
    actor's, read unless given)."""
    label = f"`{record.slug}` ({record.name}, id {record.pk}"
    if isinstance(record, Actor):
        if identifiers is None:
            identifiers = dict(record.identifiers.values_list("scheme", "value"))
        for scheme, value in identifiers.items():
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


def stored_by_reference(
    reference: Any,
    *,
    by_pk: Callable[[int], Any],
    by_identifier: Callable[[str, str], tuple[bool, Any]],
    by_slug: Callable[[str], Any],
) -> Any:
    """The stored record a reference names: by id (a number or digits), by
    `scheme:value` when `by_identifier` knows the scheme (it answers (known,
    record)), or by slug; None when there is none."""
    if isinstance(reference, bool) or not isinstance(reference, int | str):
        return None
    if isinstance(reference, int) or reference.isdigit():
        return by_pk(int(reference))
    scheme, _, value = reference.partition(":")
    if value:
        known, record = by_identifier(scheme, value)
        if known:
            return record
    return by_slug(reference)


def live(record: Any) -> Any:
    """The record itself, or for a merged one (ledger.merging) the record it
    was merged into."""
    if record is not None and record.merged_into_id is not None:
        return type(record).objects.get(pk=record.merged_into_id)
    return record


# Actors -------------------------------------------------------------------------


def _identifier(scheme: str, value: str) -> tuple[bool, tuple[str, str] | None]:
    """A reference's `scheme:value`: whether the scheme is one of
    IDENTIFIER_SCHEMES, and the identifier in canonical case (None when the
    value is not of the scheme's form, so that no actor holds it)."""
    if scheme not in IDENTIFIER_SCHEMES:
        return False, None
    try:
        return True, normalized_identifier(scheme, value)
    except ValidationError:
        return True, None


def declared_identifiers(declaration: dict) -> dict[str, str]:
    """A declaration's identifiers in canonical case; one not of its scheme's
    form is left out here (reported when the record is written)."""
    identifiers = {}
    for scheme, value in (declaration.get("identifiers") or {}).items():
        try:
            scheme, value = normalized_identifier(str(scheme), str(value))
        except ValidationError:
            continue
        identifiers[scheme] = value
    return identifiers


def _wanted_names(declaration: dict) -> list[str]:
    """The folded names (name and aliases) a declaration is found by."""
    names = [declaration.get("name") or "", *(declaration.get("aliases") or [])]
    return sorted({folded(str(name)) for name in names if name})


def _suggestion_name(declaration: dict) -> str:
    return str(declaration.get("name") or declaration.get("key") or "")


def _ids(pks: set[int]) -> RawSQL:
    """Many ids as one parameter (an array), for `__in`, which takes one
    each: a thousand candidates make a long statement to build and parse."""
    return RawSQL("SELECT unnest(%s::bigint[])", (sorted(pks),))


class StoredActors:
    """The stored actors an annotation names, as the queries of resolution
    would answer now: read for all its declarations and references at once
    (`read`, a dozen queries), so that resolving each one costs none of its
    own. What was not read ahead is queried when asked; an actor written
    meanwhile (`learn`) is read again, so that its new names and identifiers
    count from then on, as they would in the database."""

    def __init__(self) -> None:
        self._by_pk: dict[int, Actor | None] = {}
        self._by_slug: dict[str, Actor | None] = {}
        self._by_identifier: dict[tuple[str, str], Actor | None] = {}
        self._aliases: dict[int, list[str]] = {}
        self._identifiers: dict[int, dict[str, str]] = {}
        # Exact names: the folded names read, the live actors and the aliases
        # (with their actors) that SQL's folding matched for them.
        self._names_read: set[str] = set()
        self._named: list[Actor] = []
        self._aliased: list[tuple[int, str, Actor]] = []
        # Suggestions: each name's first two characters read, the candidates
        # whose name, slug or alias starts so, and the live ones' forms (loose()).
        self._heads: dict[str, set[int]] = {}
        self._forms: dict[int, list[str]] = {}
        self._written: dict[int, Actor] = {}  # written by this load, read again

    # Reading ahead ----------------------------------------------------------------

    def read(self, declarations: list[dict], references: list[Any]) -> None:
        """Read what resolving `declarations` (actor items) and `references`
        (to stored actors) asks, in one query per kind of question."""
        declarations = [d for d in declarations if isinstance(d, dict)]
        identifiers: set[tuple[str, str]] = set()
        pks: set[int] = set()
        slugs: set[str] = set()
        for declaration in declarations:
            identifiers.update(declared_identifiers(declaration).items())
            if isinstance(declaration.get("key"), str) and declaration["key"]:
                slugs.add(declaration["key"])

        def by_identifier(scheme: str, value: str) -> tuple[bool, None]:
            known, identifier = _identifier(scheme, value)
            if identifier is not None:
                identifiers.add(identifier)
            return known, None

        for reference in references:
            stored_by_reference(
                reference,
                by_pk=lambda pk: pks.add(pk),
                by_identifier=by_identifier,
                by_slug=lambda slug: slugs.add(slug),
            )
        if identifiers:
            held = Q()
            for scheme, value in identifiers:
                held |= Q(scheme=scheme, value=value)
            self._by_identifier.update(dict.fromkeys(identifiers))
            for row in ActorIdentifier.objects.filter(held).select_related("actor"):
                self._by_identifier[(row.scheme, row.value)] = row.actor
        if pks or slugs:
            self._by_pk.update(dict.fromkeys(pks))
            self._by_slug.update(dict.fromkeys(slugs))
            for actor in Actor.objects.filter(Q(pk__in=pks) | Q(slug__in=slugs)):
                if actor.pk in pks:
                    self._by_pk[actor.pk] = actor
                if actor.slug in slugs:
                    self._by_slug[actor.slug] = actor
        wanted = {name for d in declarations for name in _wanted_names(d)}
        if wanted:
            self._names_read |= wanted
            # Unordered in SQL, so that the folded-name indexes are used.
            limit = 20 * len(wanted)
            self._named = list(
                Actor.objects.alias(folded_name=folded_sql("name"))
                .filter(folded_name__in=wanted, merged_into__isnull=True)
                .order_by()[:limit]
            )
            self._aliased = [
                (alias.actor_id, alias.name, alias.actor)
                for alias in ActorAlias.objects.alias(folded_name=folded_sql("name"))
                .filter(folded_name__in=wanted)
                .select_related("actor")
                .order_by()[:limit]
            ]
        loaded = [
            *self._by_identifier.values(),
            *self._by_pk.values(),
            *self._by_slug.values(),
            *self._named,
            *(actor for _, _, actor in self._aliased),
        ]
        merged = {a.merged_into_id for a in loaded if a is not None and a.merged_into_id}
        self._read_actors(merged - self._by_pk.keys())
        loaded += [self._by_pk[pk] for pk in merged]
        self._read_names_and_identifiers({a.pk for a in loaded if a is not None})
        self._read_heads({_suggestion_name(d).strip()[:2] for d in declarations} - {""})
        close = {pk for d in declarations for pk in self._close(_suggestion_name(d))[:3]}
        self._read_actors(close - self._by_pk.keys())
        self._read_names_and_identifiers(close)

    def _read_actors(self, pks: set[int]) -> None:
        if pks:
            self._by_pk.update(dict.fromkeys(pks))
            self._by_pk.update((a.pk, a) for a in Actor.objects.filter(pk__in=pks))

    def _read_names_and_identifiers(self, pks: set[int]) -> None:
        pks = pks - self._aliases.keys()
        if not pks:
            return
        for pk in pks:
            self._aliases[pk], self._identifiers[pk] = [], {}
        aliases = ActorAlias.objects.filter(actor_id__in=pks).order_by("actor_id", "name")
        for actor_id, name in aliases.values_list("actor_id", "name"):
            self._aliases[actor_id].append(name)
        identifiers = ActorIdentifier.objects.filter(actor_id__in=pks)
        rows = identifiers.order_by("actor_id", "scheme").values_list("actor_id", "scheme", "value")
        for actor_id, scheme, value in rows:
            self._identifiers[actor_id][scheme] = value

    def _read_heads(self, heads: set[str]) -> None:
        """The suggestion candidates of each of `heads`: two queries on the
        prefix indexes per head, sent as one, then the candidates' names and
        aliases as plain rows."""
        heads = heads - self._heads.keys()
        if not heads:
            return
        parts = []
        for number, head in enumerate(sorted(heads)):
            by_name = Actor.objects.filter(
                Q(name__istartswith=head) | Q(slug__startswith=head.lower())
            ).annotate(head=Value(number))
            by_alias = ActorAlias.objects.filter(name__istartswith=head).annotate(
                head=Value(number)
            )
            parts.append(by_name.order_by().values_list("pk", "head")[:200])
            parts.append(by_alias.order_by().values_list("actor_id", "head")[:200])
        ordered = sorted(heads)
        for head in ordered:
            self._heads[head] = set()
        rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        for pk, number in rows:
            self._heads[ordered[number]].add(pk)
        candidates = set().union(*(self._heads[head] for head in heads)) - self._forms.keys()
        if not candidates:
            return
        # Unordered: which order the forms come in changes no score.
        live_candidates = Actor.objects.filter(pk__in=_ids(candidates), merged_into__isnull=True)
        for pk, name, slug in live_candidates.order_by().values_list("pk", "name", "slug"):
            self._forms[pk] = [loose(name), loose(slug)]
        aliases = ActorAlias.objects.filter(actor_id__in=_ids(candidates)).order_by()
        for actor_id, alias in aliases.values_list("actor_id", "name"):
            if actor_id in self._forms:
                self._forms[actor_id].append(loose(alias))

    # Learning what the load wrote ---------------------------------------------

    def learn(self, actor: Actor, *, aliases: list[str], identifiers: dict[str, str]) -> None:
        """`actor` was created or changed, and now has `aliases` and
        `identifiers` (in canonical case): from now on it is found by them."""
        self._aliases[actor.pk], self._identifiers[actor.pk] = list(aliases), dict(identifiers)
        self._by_pk[actor.pk] = self._written[actor.pk] = actor
        self._by_slug[actor.slug] = actor

    # Answers ------------------------------------------------------------------------

    def actor(self, pk: int) -> Actor | None:
        if pk not in self._by_pk:
            self._read_actors({pk})
        return self._by_pk[pk]

    def live(self, actor: Actor | None) -> Actor | None:
        """As `live()`."""
        if actor is not None and actor.merged_into_id is not None:
            return self.actor(actor.merged_into_id)
        return actor

    def by_slug(self, slug: str) -> Actor | None:
        if slug not in self._by_slug:
            self._by_slug[slug] = Actor.objects.filter(slug=slug).first()
        return self._by_slug[slug]

    def with_identifier(self, scheme: str, value: str) -> Actor | None:
        """The actor holding (`scheme`, `value`), in canonical case."""
        for actor in self._written.values():
            if self._identifiers[actor.pk].get(scheme) == value:
                return actor
        if (scheme, value) not in self._by_identifier:
            holder = Actor.objects.with_identifier(scheme, value).first()
            self._by_identifier[(scheme, value)] = holder
        holder = self._by_identifier[(scheme, value)]
        if holder is not None and holder.pk in self._written:
            # It held the identifier when read, and identifiers are only added
            # by a load; its record as written now.
            return self._written[holder.pk]
        return holder

    def aliases(self, actor: Actor) -> list[str]:
        self._read_names_and_identifiers({actor.pk})
        return self._aliases[actor.pk]

    def identifiers(self, actor: Actor) -> dict[str, str]:
        self._read_names_and_identifiers({actor.pk})
        return self._identifiers[actor.pk]

    def describe(self, actor: Actor) -> str:
        return describe(actor, self.identifiers(actor))

    def reference(self, reference: Any) -> Actor | None:
        """An existing actor named by id, identifier (`wikidata:Q399`) or slug."""

        def by_identifier(scheme: str, value: str) -> tuple[bool, Actor | None]:
            known, identifier = _identifier(scheme, value)
            if identifier is None:  # not of the scheme's form: no actor holds it
                return known, None
            return True, self.live(self.with_identifier(*identifier))

        return stored_by_reference(
            reference,
            by_pk=lambda pk: self.live(self.actor(pk)),
            by_identifier=by_identifier,
            by_slug=lambda slug: self.live(self.by_slug(slug)),
        )

    def by_name(self, declaration: dict) -> tuple[Actor | None, str]:
        """A live actor whose name is the declaration's name or one of its
        aliases (case and diacritics aside), else an actor with such an
        alias; the oldest wins."""
        wanted = _wanted_names(declaration)
        if not wanted:
            return None, ""
        if not set(wanted) <= self._names_read:
            self._names_read |= set(wanted)
            self._named += (
                Actor.objects.alias(folded_name=folded_sql("name"))
                .filter(folded_name__in=wanted, merged_into__isnull=True)
                .order_by()[:20]
            )
            self._aliased += [
                (alias.actor_id, alias.name, alias.actor)
                for alias in ActorAlias.objects.alias(folded_name=folded_sql("name"))
                .filter(folded_name__in=wanted)
                .select_related("actor")
                .order_by()[:20]
            ]
        named = [a for a in self._named if a.pk not in self._written]
        named += [a for a in self._written.values() if a.merged_into_id is None]
        for actor in sorted(named, key=lambda a: a.pk):
            if folded(actor.name) in wanted:
                return actor, "name"
        aliased = [entry for entry in self._aliased if entry[0] not in self._written]
        aliased += [
            (actor.pk, alias, actor)
            for actor in self._written.values()
            for alias in self._aliases[actor.pk]
        ]
        for _, alias, actor in sorted(aliased, key=lambda entry: entry[0]):
            if folded(alias) in wanted:
                return actor, "alias"
        return None, ""

    def _close(self, name: str) -> list[int]:
        """The live actors whose name, slug or an alias is close to `name`
        (starting with the same two characters), oldest first."""
        target = loose(name)
        head = name.strip()[:2]
        if not target or not head:
            return []
        self._read_heads({head})
        candidates = {pk for pk in self._heads[head] if pk not in self._written}
        forms = {pk: self._forms[pk] for pk in candidates if pk in self._forms}
        for actor in self._written.values():
            names = [actor.name, actor.slug, *self._aliases[actor.pk]]
            if actor.merged_into_id is None and (
                actor.slug.startswith(head.lower())
                or any(form.upper().startswith(head.upper()) for form in names)
            ):
                forms[actor.pk] = [loose(form) for form in names]
        close = []
        for pk, names in sorted(forms.items()):
            # The share of characters in common, in order (0 to 100), as difflib's
            # ratio() but in C: a few hundred candidates cost well under a millisecond.
            score = max(fuzz.ratio(target, form) for form in names)
            if score >= SUGGESTION_CUTOFF * 100:
                close.append(pk)
        return close

    def suggestions(self, declaration: dict) -> list[str]:
        name = _suggestion_name(declaration)
        suggested = []
        for pk in self._close(name)[:3]:
            actor = self.actor(pk)
            assert actor is not None
            suggested.append(
                f"“{name}” looks like existing {self.describe(actor)}; to use it, refer to "
                "it by its slug or an identifier, or give the same identifier here."
            )
        return suggested


def actor_by_reference(reference: Any, stored: StoredActors | None = None) -> Actor | None:
    """An existing actor named by id, identifier (`wikidata:Q399`) or slug."""
    return (stored or StoredActors()).reference(reference)


def find_actor(declaration: dict, stored: StoredActors | None = None) -> Found:
    """Resolve an actor declaration (key, name, aliases, identifiers, ...),
    against `stored` when the annotation's actors were read ahead."""
    stored = stored or StoredActors()
    identifiers = declared_identifiers(declaration)
    found = Found()
    holders = {}
    for scheme, value in identifiers.items():
        holder = stored.with_identifier(scheme, value)
        if holder is not None:
            holders[(scheme, value)] = holder
    distinct = {holder.pk: holder for holder in holders.values()}
    if len(distinct) > 1:
        named = "; ".join(
            f"{scheme} {value} is held by {stored.describe(holder)}"
            for (scheme, value), holder in holders.items()
        )
        found.conflicts.append(("identifiers", f"The identifiers name different actors: {named}."))
        return found
    if distinct:
        (scheme, value), holder = next(iter(holders.items()))
        found.record, found.by = holder, f"identifier {scheme}:{value}"
    elif declaration.get("key") and (actor := stored.live(stored.by_slug(declaration["key"]))):
        found.record, found.by = actor, "slug"
    else:
        found.record, found.by = stored.by_name(declaration)
    if found.record is None:
        found.suggestions = stored.suggestions(declaration)
        return found
    _merge_actor(found, declaration, identifiers, stored)
    return found


def _merge_actor(
    found: Found, declaration: dict, identifiers: dict[str, str], stored: StoredActors
) -> None:
    actor: Actor = found.record
    known_names = {folded(actor.name)} | {folded(a) for a in stored.aliases(actor)}
    new_aliases = []
    for name in [declaration.get("name"), *(declaration.get("aliases") or [])]:
        if name and folded(str(name)) not in known_names:
            new_aliases.append(str(name))
            known_names.add(folded(str(name)))
    if new_aliases:
        found.additions["aliases"] = new_aliases
    held = stored.identifiers(actor)
    label = stored.describe(actor)
    for scheme, value in identifiers.items():
        if scheme in held and held[scheme] != value:
            found.conflicts.append(
                ("identifiers", f"{label} has {scheme} {held[scheme]}, the annotation {value}.")
            )
        elif scheme not in held:
            other = stored.with_identifier(scheme, value)
            if other is not None and other.pk != actor.pk:
                found.conflicts.append(
                    ("identifiers", f"{scheme} {value} is held by {stored.describe(other)}.")
                )
            else:
                found.additions.setdefault("identifiers", {})[scheme] = value
    for name in ("kind", "country", "sector"):
        value = declaration.get(name)
        if value and getattr(actor, name) and getattr(actor, name) != value:
            found.conflicts.append(
                (name, f"{label} has {name} {getattr(actor, name)!r}, not {value!r}.")
            )
        elif value and not getattr(actor, name):
            found.additions[name] = value
    description = declaration.get("description")
    if description and not actor.description:
        found.additions["description"] = description
    elif description and folded(description) != folded(actor.description):
        found.conflicts.append(
            ("description", f"{label} has another description: “{actor.description}”.")
        )


# Places -------------------------------------------------------------------------


def place_by_reference(reference: Any) -> Place | None:
    """An existing place named by id, `geonames:<id>` or slug."""

    def by_identifier(scheme: str, value: str) -> tuple[bool, Place | None]:
        if scheme != "geonames" or not value.isdigit():
            return False, None
        return True, live(Place.objects.filter(geonames_id=int(value)).first())

    return stored_by_reference(
        reference,
        by_pk=lambda pk: live(Place.objects.filter(pk=pk).first()),
        by_identifier=by_identifier,
        by_slug=lambda slug: live(Place.objects.filter(slug=slug).first()),
    )


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
