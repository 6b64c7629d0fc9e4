"""Mention suggestions for annotators: the spans of a text that name a stored
actor or place, the dates it states and the passages it quotes.

Every offset is a Python string index: Unicode code points from the start of
the text, the end exclusive, as evidence offsets are (`text[start:end]` is the
span). The suggestions are found, never stored; annotators decide.

Names are found with one Aho-Corasick automaton over the folded names and
aliases of every actor and place (`folded()`: case, diacritics and repeated
spaces aside), so a text is scanned once whatever the size of the registry.
The automaton is built once per process and rebuilt when the change feed shows
that an actor or a place changed (`registry_version()`).
"""

import calendar
import datetime
import re
import threading
import unicodedata
from collections.abc import Iterable
from typing import Any, NamedTuple

import ahocorasick
from django.db.models import F

from actors.models import Actor, ActorAlias, folded
from events.models import Place
from ledger.models import Change, DatePrecision

# A name that folds to fewer characters than this is not looked for: one
# letter would be found in every sentence.
MIN_NAME_LENGTH = 2


class Named(NamedTuple):
    """A stored record a span of text may name."""

    kind: str  # "actor" or "place"
    id: int
    slug: str
    name: str


# Folding with offsets -----------------------------------------------------------


_FOLDS: dict[str, str] = {}


def _fold_char(char: str) -> str:
    """`folded()` of one character, without the spacing: what it contributes to
    the folded text. Cached, a text holding few distinct characters."""
    fold = _FOLDS.get(char)
    if fold is None:
        decomposed = unicodedata.normalize("NFKD", char)
        fold = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
        _FOLDS[char] = fold
    return fold


def folded_with_origins(text: str) -> tuple[str, list[int]]:
    """The text folded as `folded()` folds a name (each run of spaces one
    space), and for each folded character the offset of the character of `text`
    it comes from. Folding may change the length ("ß" gives "ss", a combining
    accent gives nothing), so a span of the folded text is read back through
    this list."""
    out: list[str] = []
    origins: list[int] = []
    for offset, char in enumerate(text):
        for piece in _fold_char(char):
            if piece.isspace():
                if out and out[-1] == " ":
                    continue
                piece = " "
            out.append(piece)
            origins.append(offset)
    return "".join(out), origins


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


# Names ----------------------------------------------------------------------------


class NameSpan(NamedTuple):
    start: int
    end: int
    records: tuple[Named, ...]


class NameIndex:
    """An automaton over folded names: finds where a text names any of them.

    A span is reported when its folded text equals a folded name, it is
    neither preceded nor followed by a letter, digit or underscore (a name is
    never part of a longer word: "Armenia" is not found in "Armenians"), and it
    begins and ends on whole characters of the text. Of overlapping spans the
    leftmost wins, and of those starting together the longest ("Russian
    Federation", not "Russia")."""

    def __init__(self, names: Iterable[tuple[str, Named]]):
        records: dict[str, dict[tuple[str, int], Named]] = {}
        for name, record in names:
            # folded(), at a third of the cost where there is nothing to decompose.
            key = " ".join(name.lower().split()) if name.isascii() else folded(name)
            if len(key) >= MIN_NAME_LENGTH:
                records.setdefault(key, {})[(record.kind, record.id)] = record
        self.automaton = ahocorasick.Automaton()
        for key, by_id in records.items():
            self.automaton.add_word(key, (len(key), tuple(by_id[k] for k in sorted(by_id))))
        self.size = len(records)
        if records:
            self.automaton.make_automaton()

    def find(self, text: str) -> list[NameSpan]:
        if not self.size:
            return []
        folded_text, origins = folded_with_origins(text)
        length = len(folded_text)
        found = []
        for last, (size, records) in self.automaton.iter(folded_text):
            start, end = last - size + 1, last + 1
            if start > 0 and (
                origins[start - 1] == origins[start] or _is_word(folded_text[start - 1])
            ):
                continue
            if end < length and (origins[end] == origins[end - 1] or _is_word(folded_text[end])):
                continue
            found.append((start, end, records))
        found.sort(key=lambda span: (span[0], span[0] - span[1]))
        spans: list[NameSpan] = []
        reached = 0
        for start, end, records in found:
            if start >= reached:
                # Back to the text's offsets; the end takes in what folds to
                # nothing after the last letter (a combining accent).
                text_end = origins[end] if end < length else len(text)
                spans.append(NameSpan(origins[start], text_end, records))
                reached = end
        return spans


def registry_names() -> Iterable[tuple[str, Named]]:
    """Every name and alias of every actor and place, with its record; a
    merged one's name is an alias of the record it was merged into."""
    actors = Actor.objects.filter(merged_into__isnull=True).order_by()
    actors = actors.values_list("id", "slug", "name")
    by_id = {}
    for pk, slug, name in actors.iterator(chunk_size=10_000):
        by_id[pk] = record = Named("actor", pk, slug, name)
        yield name, record
    aliases = ActorAlias.objects.order_by().values_list("actor_id", "name")
    for actor_id, alias in aliases.iterator(chunk_size=10_000):
        if actor_id in by_id:  # else created after the actors were read
            yield alias, by_id[actor_id]
    places = Place.objects.filter(merged_into__isnull=True).order_by()
    places = places.values_list("id", "slug", "name")
    for pk, slug, name in places.iterator(chunk_size=10_000):
        yield name, Named("place", pk, slug, name)


def registry_version() -> tuple[int | None, int | None] | None:
    """Which state of the actors and places the process sees: the latest
    change-feed entry of each. Every committed write of an actor, an alias or
    a place adds one (the `ChangeLog` and `TouchesParent` triggers, and the
    bulk loader), so a new latest entry means the names may have changed. Two
    index scans (`events_change_resource_order`), each reading one row.

    None when the current transaction has itself changed an actor or a place
    (its entries have no commit sequence yet, and come first): what it wrote
    may never be committed, and its further writes of the same record add no
    entry (one per record and transaction), so no entry tells its states apart.
    """
    latest = []
    for resource in ("actors", "places"):
        entry = (
            Change.objects.filter(resource=resource)
            .order_by(F("commit_seq").desc(nulls_first=True), F("id").desc())
            .values_list("id", "commit_seq")
            .first()
        )
        if entry is not None and entry[1] is None:
            return None
        latest.append(entry[0] if entry else None)
    return latest[0], latest[1]


_index_lock = threading.Lock()
_index: tuple[tuple[int | None, int | None], NameIndex] | None = None


def name_index() -> NameIndex:
    """The automaton of the registry's names as they are now: the process's
    copy, rebuilt first if an actor or a place changed since it was built. In
    a transaction that changed actors or places, one of its own, not kept."""
    global _index
    version = registry_version()  # before the names: a later write only rebuilds again
    if version is None:
        return NameIndex(registry_names())
    with _index_lock:
        if _index is None or _index[0] != version:
            _index = (version, NameIndex(registry_names()))
        return _index[1]


# Dates ----------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("January", "Jan"),
            ("February", "Feb"),
            ("March", "Mar"),
            ("April", "Apr"),
            ("May",),
            ("June", "Jun"),
            ("July", "Jul"),
            ("August", "Aug"),
            ("September", "Sept", "Sep"),
            ("October", "Oct"),
            ("November", "Nov"),
            ("December", "Dec"),
        ],
        start=1,
    )
    for name in names
}
# Longest first, so that "Sept" is not read as "Sep" and a "t".
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"\d{4}"
# Month names are capitalised (so "may" the verb is no month); a year alone is
# a date only after a word that makes it one ("in 1991"), not as a count.
_DATES = re.compile(
    rf"""
    (?<![\w-])(?:
        (?P<dmy_day>{_DAY})\s+(?:of\s+)?(?P<dmy_month>{_MONTH})\.?,?\s+(?P<dmy_year>{_YEAR})
      | (?P<mdy_month>{_MONTH})\.?\s+(?P<mdy_day>{_DAY}),?\s+(?P<mdy_year>{_YEAR})
      | (?P<my_month>{_MONTH})\.?,?\s+(?P<my_year>{_YEAR})
      | (?P<iso_year>{_YEAR})-(?P<iso_month>\d{{2}})-(?P<iso_day>\d{{2}})
      | (?:[Ii]n|[Ss]ince|[Uu]ntil|[Bb]y|[Ff]rom|[Dd]uring|[Bb]efore|[Aa]fter)\s+
        (?P<year>{_YEAR})
    )(?![\w-])
    """,
    re.VERBOSE,
)


class DateSpan(NamedTuple):
    start: int
    end: int
    date_start: datetime.date
    date_end: datetime.date
    precision: str


def find_dates(text: str) -> list[DateSpan]:
    """The dates the text states in English, each with its precision: "9
    November 2023", "November 9, 2023" and "2023-11-09" (day), "November 2023"
    (month), "in 1991" (year: the year's offsets). A day that does not exist
    ("30 February 2023") is no date."""
    spans = []
    for match in _DATES.finditer(text):
        parts = match.groupdict()
        for form in ("dmy", "mdy", "iso"):
            if parts[f"{form}_year"]:
                month = parts[f"{form}_month"]
                month_number = int(month) if month.isdigit() else _MONTHS[month]
                day = int(parts[f"{form}_day"].rstrip("stndrh"))
                bounds = _day(int(parts[f"{form}_year"]), month_number, day)
                precision, start = DatePrecision.DAY, match.start()
                break
        else:
            if parts["my_year"]:
                bounds = _month(int(parts["my_year"]), _MONTHS[parts["my_month"]])
                precision, start = DatePrecision.MONTH, match.start()
            else:
                year = int(parts["year"])
                bounds = _interval(year, 1, 1, 12, 31)
                precision, start = DatePrecision.YEAR, match.start("year")
        if bounds is not None:
            spans.append(DateSpan(start, match.end(), *bounds, precision.value))
    return spans


def _day(year: int, month: int, day: int) -> tuple[datetime.date, datetime.date] | None:
    return _interval(year, month, day, month, day)


def _month(year: int, month: int) -> tuple[datetime.date, datetime.date] | None:
    if not year:
        return None
    return _interval(year, month, 1, month, calendar.monthrange(year, month)[1])


def _interval(
    year: int, month: int, day: int, last_month: int, last_day: int
) -> tuple[datetime.date, datetime.date] | None:
    try:
        return datetime.date(year, month, day), datetime.date(year, last_month, last_day)
    except ValueError:  # no such day, or year 0
        return None


# Quotes ---------------------------------------------------------------------------

# A passage between double quotes, within one paragraph: typographic (“…”),
# low-high („…“ or „…”), guillemets («…») or straight ("…", paired in order).
_QUOTES = re.compile(r'“([^“”\n]+)”|„([^„“”\n]+)[“”]|«([^«»\n]+)»|"([^"\n]+)"')


class QuoteSpan(NamedTuple):
    start: int
    end: int


def find_quotes(text: str) -> list[QuoteSpan]:
    """The passages the text quotes: the words inside the marks, without them,
    as evidence quotes them."""
    spans = []
    for match in _QUOTES.finditer(text):
        group = next(index for index in range(1, 5) if match.group(index) is not None)
        start, end = match.span(group)
        inner = text[start:end]
        start += len(inner) - len(inner.lstrip())
        end -= len(inner) - len(inner.rstrip())
        if start < end:
            spans.append(QuoteSpan(start, end))
    return spans


# All together ---------------------------------------------------------------------


def mentions(text: str) -> dict[str, list[dict[str, Any]]]:
    """What an annotator of `text` may want to record, each with its offsets
    (code points, end exclusive) and its words: the spans naming stored actors
    and places (`names`, each with every record it may name), the dates
    (`dates`, with the first and last day meant and the precision) and the
    quoted passages (`quotes`), each list in the order of the text."""
    return {
        "names": [
            {
                "start": span.start,
                "end": span.end,
                "text": text[span.start : span.end],
                "matches": [record._asdict() for record in span.records],
            }
            for span in name_index().find(text)
        ],
        "dates": [
            {
                "start": span.start,
                "end": span.end,
                "text": text[span.start : span.end],
                "date_start": span.date_start,
                "date_end": span.date_end,
                "date_precision": span.precision,
            }
            for span in find_dates(text)
        ],
        "quotes": [
            {"start": span.start, "end": span.end, "text": text[span.start : span.end]}
            for span in find_quotes(text)
        ],
    }
