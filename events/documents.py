"""Loading a source document together with its annotation file.

A document is a text file that starts with a `date YYYY-MM-DD` header (after
optional whitespace) followed by the article body. Its annotation is a YAML file
next to it with the same name (`<name>.yaml`) that describes the actors, places,
affiliations, events and statements the document reports, each citing its
evidence by quoting the exact text. fixtures/README.md describes the annotation format.
"""

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from actors.models import Actor, Affiliation
from actors.services import actor_create, affiliation_create
from events.models import Event, Place
from events.services import event_create, place_create, statement_create
from sources.models import Source
from sources.services import Span, evidence_attach, source_create, span_for_quote

HEADER_RE = re.compile(r"\A\s*date (\d{4}-\d{2}-\d{2})\s+")
ANNOTATION_FORMAT = "event-ledger-annotation/1"

SECTION_FIELDS = {
    "actors": {"key", "name", "kind", "country", "sector", "description", "aliases", "identifiers"},
    "places": {"key", "name", "kind", "country", "latitude", "longitude", "geonames_id"},
    "affiliations": {"member", "organization", "role", "start", "end", "evidence"},
    "events": {
        "key",
        "type",
        "mode",
        "context",
        "status",
        "title",
        "summary",
        "date",
        "place",
        "place_text",
        "participants",
        "evidence",
    },
    "statements": {
        "speaker",
        "kind",
        "content",
        "quote",
        "stance",
        "date",
        "targets",
        "about_actors",
        "about_events",
        "evidence",
    },
}


class DocumentError(Exception):
    """The document or its annotation cannot be loaded; the message names the
    item and, for evidence, the quote at fault."""


@dataclass
class LoadResult:
    source: Source
    created: bool
    counts: dict[str, int] = field(default_factory=dict)


def read_document(path: Path) -> tuple[datetime.date, str]:
    """Split a document file into its publication date and its body."""
    raw = path.read_text(encoding="utf-8")
    match = HEADER_RE.match(raw)
    if not match:
        raise DocumentError(f"{path.name}: the file must start with 'date YYYY-MM-DD'.")
    try:
        published_on = datetime.date.fromisoformat(match.group(1))
    except ValueError:
        raise DocumentError(f"{path.name}: invalid date {match.group(1)!r}.") from None
    body = raw[match.end() :]
    if not body.strip():
        raise DocumentError(f"{path.name}: the document has no text after its header.")
    return published_on, body


def annotation_path_for(document: Path) -> Path:
    return document.with_suffix(".yaml")


def load_document(document: Path, annotation: Path | None = None) -> LoadResult:
    """Load `document` and its annotation in one transaction.

    A source whose text is already stored (same sha256) is left as it is, so
    loading twice changes nothing. Actors and places are matched by key and
    created only when missing. Any error leaves the database untouched.
    """
    published_on, text = read_document(document)
    existing = Source.objects.with_text(text).first()
    if existing is not None:
        return LoadResult(source=existing, created=False)
    annotation = annotation or annotation_path_for(document)
    try:
        data = yaml.safe_load(annotation.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DocumentError(f"{document.name}: no annotation file {annotation.name}.") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{annotation.name}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != ANNOTATION_FORMAT:
        raise DocumentError(f"{annotation.name}: expected 'format: {ANNOTATION_FORMAT}'.")
    try:
        with transaction.atomic():
            return _Loader(data, text=text, published_on=published_on).load()
    except IntegrityError as exc:
        raise DocumentError(f"{annotation.name}: the database refused the data: {exc}") from None


class _Loader:
    def __init__(self, data: dict[str, Any], *, text: str, published_on: datetime.date):
        self.data = data
        self.text = text
        self.published_on = published_on
        self.actors: dict[str, Actor] = {}
        self.places: dict[str, Place] = {}
        self.events: dict[str, Event] = {}
        self.counts = dict.fromkeys(SECTION_FIELDS, 0)

    def load(self) -> LoadResult:
        meta = self.data.get("source") or {}
        self.source = source_create(
            text=self.text,
            published_on=self.published_on,
            title=meta.get("title") or "",
            publisher=meta.get("publisher") or "",
            url=meta.get("url") or "",
            language=meta.get("language") or "en",
        )
        for section in SECTION_FIELDS:
            handler: Callable[[dict], None] = getattr(self, f"_{section[:-1]}")
            items = self.data.get(section) or []
            if not isinstance(items, list):
                raise DocumentError(f"{section}: expected a list.")
            for index, item in enumerate(items):
                label = f"{section}[{index}]"
                if isinstance(item, dict) and item.get("key"):
                    label += f" ({item['key']})"
                if not isinstance(item, dict):
                    raise DocumentError(f"{label}: expected a mapping.")
                unknown = set(item) - SECTION_FIELDS[section]
                if unknown:
                    raise DocumentError(f"{label}: unknown fields {sorted(unknown)}.")
                try:
                    handler(item)
                except ValidationError as exc:
                    raise DocumentError(f"{label}: {_messages(exc)}") from None
                except KeyError as exc:
                    raise DocumentError(f"{label}: missing or unknown {exc.args[0]!r}.") from None
                except DocumentError as exc:
                    raise DocumentError(f"{label}: {exc}") from None
        return LoadResult(source=self.source, created=True, counts=self.counts)

    # One method per section, named for the singular.

    def _actor(self, item: dict) -> None:
        key = item["key"]
        actor = Actor.objects.filter(slug=key).first()
        if actor is None:
            actor = actor_create(
                slug=key,
                name=item["name"],
                kind=item["kind"],
                country=item.get("country") or "",
                sector=item.get("sector") or "",
                description=item.get("description") or "",
                aliases=item.get("aliases") or [],
                identifiers=item.get("identifiers") or {},
            )
            self.counts["actors"] += 1
        self.actors[key] = actor

    def _place(self, item: dict) -> None:
        key = item["key"]
        place = Place.objects.filter(slug=key).first()
        if place is None:
            place = place_create(
                slug=key,
                name=item["name"],
                kind=item["kind"],
                country=item.get("country") or "",
                latitude=item.get("latitude"),
                longitude=item.get("longitude"),
                geonames_id=item.get("geonames_id"),
            )
            self.counts["places"] += 1
        self.places[key] = place

    def _affiliation(self, item: dict) -> None:
        """An affiliation already on record (same member, organisation, role and
        start) gains this document's evidence instead of being repeated."""
        start, end = item.get("start") or {}, item.get("end") or {}
        member, organization = self.actor(item["member"]), self.actor(item["organization"])
        existing = Affiliation.objects.filter(
            member=member,
            organization=organization,
            role=item["role"],
            start_date=start.get("date"),
        ).first()
        if existing is not None:
            evidence_attach(record=existing, spans=self.spans(item))
            return
        affiliation_create(
            member=member,
            organization=organization,
            role=item["role"],
            start_date=start.get("date"),
            start_precision=start.get("precision", "unknown"),
            end_date=end.get("date"),
            end_precision=end.get("precision", "unknown"),
            evidence=self.spans(item),
        )
        self.counts["affiliations"] += 1

    def _event(self, item: dict) -> None:
        place = item.get("place")
        event = event_create(
            type=item["type"],
            title=item["title"],
            summary=item.get("summary") or "",
            mode=item.get("mode") or "",
            context=item.get("context") or [],
            status=item.get("status", "occurred"),
            place=self.places[place] if place else None,
            place_text=item.get("place_text") or "",
            participants=[
                (self.actor(p["actor"]), p["role"]) for p in item.get("participants") or []
            ],
            evidence=self.spans(item),
            **self.dates(item),
        )
        if item.get("key"):
            self.events[item["key"]] = event
        self.counts["events"] += 1

    def _statement(self, item: dict) -> None:
        statement_create(
            speaker=self.actor(item["speaker"]),
            kind=item["kind"],
            content=item["content"],
            quote=item.get("quote") or "",
            stance=item.get("stance") or "",
            targets=[self.actor(key) for key in item.get("targets") or []],
            about_actors=[self.actor(key) for key in item.get("about_actors") or []],
            about_events=[self.events[key] for key in item.get("about_events") or []],
            evidence=self.spans(item),
            **self.dates(item),
        )
        self.counts["statements"] += 1

    def actor(self, key: str) -> Actor:
        if key not in self.actors:
            raise DocumentError(f"unknown actor {key!r} (declare it under actors).")
        return self.actors[key]

    def dates(self, item: dict) -> dict[str, Any]:
        date = item.get("date")
        if not isinstance(date, dict):
            raise DocumentError("'date' must give start, end and precision.")
        return {
            "date_start": date.get("start"),
            "date_end": date.get("end"),
            "date_precision": date.get("precision", "day"),
        }

    def spans(self, item: dict) -> list[Span]:
        entries = item.get("evidence") or []
        if not entries:
            raise DocumentError("cites no evidence; quote at least one passage.")
        spans = []
        for entry in entries:
            quote, occurrence = (
                (entry, None)
                if isinstance(entry, str)
                else (
                    entry.get("quote", ""),
                    entry.get("occurrence"),
                )
            )
            try:
                spans.append(span_for_quote(source=self.source, quote=quote, occurrence=occurrence))
            except ValidationError as exc:
                raise DocumentError(f"evidence: {_messages(exc)}") from None
        return spans


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items()
        )
    return " ".join(exc.messages)
