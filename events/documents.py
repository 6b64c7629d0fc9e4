"""Loading a source document together with its annotation: from files
(`manage.py seed`) or from the API (`POST /api/v1/documents/`).

A document is a text file that starts with a `date YYYY-MM-DD` header (after
optional whitespace) followed by the article body. Its annotation is a YAML file
next to it with the same name (`<name>.yaml`) that describes the actors, places,
affiliations, events and statements the document reports, each citing its
evidence by quoting the exact text. fixtures/README.md describes the annotation format.
"""

import calendar
import datetime
import difflib
import hashlib
import json
import re
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pghistory
import yaml
from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError, IntegrityError, transaction

from actors.models import Actor, Affiliation
from actors.services import (
    actor_create,
    actor_update,
    affiliation_create,
    affiliation_delete,
    affiliation_update,
)
from events.models import Event, Place, Statement
from events.resolution import (
    Found,
    StoredActors,
    declared_identifiers,
    find_actor,
    find_place,
    place_by_reference,
)
from events.services import (
    event_create,
    event_delete,
    event_update,
    place_create,
    place_update,
    statement_create,
    statement_delete,
    statement_update,
)
from ledger.api.inputs import date_from_iso
from ledger.api.parsers import load_yaml
from ledger.models import DatePrecision, checks_left_to_database
from ledger.services import rows_written_together, without_savepoints
from sources.models import Source
from sources.services import (
    Span,
    evidence_attach,
    source_create,
    source_update,
    span_for_quote,
)

HEADER_RE = re.compile(r"\A\s*date (\d{4}-\d{2}-\d{2})\s+")
ANNOTATION_FORMAT = "event-ledger-annotation/1"

SECTION_FIELDS = {
    "actors": {"key", "name", "kind", "country", "sector", "description", "aliases", "identifiers"},
    "places": {"key", "name", "kind", "country", "latitude", "longitude", "geonames_id"},
    "affiliations": {"key", "member", "organization", "role", "start", "end", "evidence"},
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
        "key",
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


# What each field of an annotation holds: checked before an item is looked at,
# so that a value of the wrong type is a problem named at its place.
TEXT, NUMBER, WHOLE, MAPPING = "text", "a number", "a whole number", "a mapping"
REFERENCE = "a key, slug, id or identifier"
TEXTS, MAPPINGS, ITEMS = "a list of texts", "a list of mappings", "a list"
FIELD_TYPES = {
    "key": TEXT,
    "name": TEXT,
    "kind": TEXT,
    "country": TEXT,
    "sector": TEXT,
    "description": TEXT,
    "aliases": TEXTS,
    "identifiers": MAPPING,
    "latitude": NUMBER,
    "longitude": NUMBER,
    "geonames_id": WHOLE,
    "member": REFERENCE,
    "organization": REFERENCE,
    "role": TEXT,
    "start": MAPPING,
    "end": MAPPING,
    "type": TEXT,
    "mode": TEXT,
    "context": TEXTS,
    "status": TEXT,
    "title": TEXT,
    "summary": TEXT,
    "date": MAPPING,
    "place": REFERENCE,
    "place_text": TEXT,
    "participants": MAPPINGS,
    "evidence": ITEMS,
    "speaker": REFERENCE,
    "content": TEXT,
    "quote": TEXT,
    "stance": TEXT,
    "targets": ITEMS,
    "about_actors": ITEMS,
    "about_events": TEXTS,
}


def _is(value: Any, kind: str) -> bool:
    if value is None:
        return True  # left out
    whole = isinstance(value, int) and not isinstance(value, bool)
    return {
        TEXT: isinstance(value, str),
        NUMBER: whole or isinstance(value, float),
        WHOLE: whole,
        MAPPING: isinstance(value, dict),
        REFERENCE: isinstance(value, str) or whole,
        TEXTS: isinstance(value, list) and all(isinstance(v, str) for v in value),
        MAPPINGS: isinstance(value, list) and all(isinstance(v, dict) for v in value),
        ITEMS: isinstance(value, list)
        and all(isinstance(v, str | dict) or _is(v, REFERENCE) for v in value),
    }[kind]


def _well_formed(section: str, item: Any) -> bool:
    """Whether an item is a mapping of its section's fields, each holding its
    type: an item the loader tries."""
    return (
        isinstance(item, dict)
        and set(item) <= SECTION_FIELDS[section]
        and all(_is(value, FIELD_TYPES[name]) for name, value in item.items())
    )


class DocumentError(Exception):
    """The document or its annotation cannot be loaded; the message names every
    problem (`problems`), each with the item and, for evidence, the quote at fault."""

    def __init__(self, message: str, problems: list["Problem"] | None = None):
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Problem:
    """One thing wrong with a document: where (a JSON pointer into the
    annotation, or /text), what, and a hint where one helps."""

    pointer: str
    detail: str
    code: str = "invalid"
    hint: str | None = None
    label: str = ""  # the item as the seed command names it: "events[0] (talks)"
    field: str = ""  # the field at fault, in the seed command's message

    def as_dict(self) -> dict[str, Any]:
        entry = {"pointer": self.pointer, "detail": self.detail, "code": self.code}
        if self.hint:
            entry["hint"] = self.hint
        return entry

    def as_line(self) -> str:
        where = ": ".join(part for part in (self.label, self.field) if part)
        line = f"{where}: {self.detail}" if where else self.detail
        return f"{line} ({self.hint})" if self.hint else line


@dataclass
class Report:
    """What importing a document did, or (dry run, or problems) would do."""

    source: Source | None = None
    created: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    matched: list[dict[str, Any]] = field(default_factory=list)
    additions: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # A stored document's annotation applied again: what it changed.
    reapplied: bool = False
    updated: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    # The document was loaded before from another version of its annotation,
    # before annotations were kept: the changes could not be applied.
    annotation_changed: bool = False


# The records an annotation produces, by section: what re-applying it matches.
PRODUCED = ("affiliations", "events", "statements")


def annotation_digest(data: dict[str, Any]) -> str:
    """The sha256 of an annotation's content, whatever its layout (YAML or JSON,
    key order): an unchanged annotation has the same digest."""
    return hashlib.sha256(json.dumps(_plain(data), sort_keys=True).encode("utf-8")).hexdigest()


def _plain(data: Any) -> Any:
    """`data` as JSON holds it: YAML's dates become ISO strings."""
    return json.loads(json.dumps(data, default=str))


def loaded_annotation_digest(source: Source) -> str | None:
    """The sha256 of the annotation file `source` was loaded with, for a source
    loaded before annotations were kept with it."""
    created = source.snapshots.filter(pgh_label="insert").select_related("pgh_context").first()
    metadata = created.pgh_context.metadata if created and created.pgh_context else {}
    return metadata.get("annotation_sha256")


def parse_annotation(raw: str, *, name: str = "annotation") -> dict[str, Any]:
    """An annotation from YAML (or JSON, which is YAML) text, checked for its format line."""
    try:
        data = load_yaml(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise DocumentError(f"{name}: not valid YAML: {exc}") from None
    check_format(data, name=name)
    return data


def check_format(data: Any, *, name: str = "annotation") -> None:
    if not isinstance(data, dict) or data.get("format") != ANNOTATION_FORMAT:
        raise DocumentError(f"{name}: expected 'format: {ANNOTATION_FORMAT}'.")


def import_document(
    *,
    text: str,
    annotation: dict[str, Any],
    published_on: datetime.date | None = None,
    dry_run: bool = False,
    root: str = "",
    stored: Source | None = None,
) -> Report:
    """Store `text` as a source with everything its annotation describes, in one
    transaction, or nothing: with any problem, or on a dry run, the transaction
    is rolled back after every item was tried, so the report lists every
    problem at once. Pointers are into the annotation, under `root`.

    With `stored` (the source already holding `text`), the annotation is
    applied again to it: the records its previous annotation produced are
    matched to the items by key (reapply's rules in fixtures/README.md),
    updated, created or deleted; an unchanged annotation changes nothing.

    The items are first loaded without a savepoint each (two round trips per
    item, and past 64 a slower PostgreSQL), with the constraints the database
    enforces at each write left to it (no query of their own first:
    ledger.models.checks_left_to_database) and, for a new document, the child
    rows of all items (participants, evidence, aliases, ...) inserted
    together at the end, one statement per kind
    (ledger.services.rows_written_together): what most documents, having no
    problem, need not pay for. At the first problem, or refusal of the
    database, that try is undone and the document loaded again item by item,
    each in a savepoint of its own, every record checked before it is
    written, so that the report lists every problem. Both are the same
    loader."""
    with transaction.atomic():
        if stored is not None:
            # One re-application of a document at a time.
            stored = Source.objects.select_for_update().get(pk=stored.pk)
        report = None
        try:
            # Re-applying reads back whether a record's revision changed (new
            # child rows alone change it), so its rows are written as they come.
            together = rows_written_together() if stored is None else nullcontext()
            with transaction.atomic(), without_savepoints(), checks_left_to_database(), together:
                loader = _Loader(
                    annotation, text=text, published_on=published_on, root=root, whole=True
                )
                report = loader.load(stored)
        except Exception:  # a problem, which the loading item by item reports
            report = None
        if report is None:
            if stored is not None:  # as stored, not as the undone try changed it
                stored = Source.objects.get(pk=stored.pk)
            loader = _Loader(annotation, text=text, published_on=published_on, root=root)
            report = loader.load(stored)
        if report.problems or dry_run:
            transaction.set_rollback(True)
            report.created = False
    return report


def load_document(document: Path, annotation: Path | None = None) -> Report:
    """Load `document` and its annotation file in one transaction.

    A source whose text is already stored (same sha256) gets the annotation
    applied again (import_document's `stored`): an unchanged annotation changes
    nothing, a corrected one updates, creates and deletes what the document
    produced. Actors and places are found among those stored
    (events.resolution) and created only when missing. Any problem leaves the
    database untouched; the error lists every one.
    """
    published_on, text = read_document(document)
    annotation = annotation or annotation_path_for(document)
    try:
        raw = annotation.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(f"{document.name}: no annotation file {annotation.name}.") from None
    existing = Source.objects.with_text(text).first()
    if existing is not None and existing.annotation is None:
        # Loaded before annotations were kept: which records came from which
        # item is unknown, so a corrected annotation cannot be applied.
        loaded_from = loaded_annotation_digest(existing)
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        changed = loaded_from is not None and loaded_from != digest
        return Report(source=existing, created=False, annotation_changed=changed)
    data = parse_annotation(raw, name=annotation.name)
    if existing is not None and existing.annotation["sha256"] == annotation_digest(data):
        return Report(source=existing, reapplied=True)
    report = import_document(text=text, annotation=data, published_on=published_on, stored=existing)
    if report.problems:
        lines = "\n".join(f"- {problem.as_line()}" for problem in report.problems)
        raise DocumentError(
            f"{annotation.name}: {len(report.problems)} problem(s):\n{lines}", report.problems
        )
    return report


class _Skip(Exception):
    """An item cannot be written; its problems are recorded."""


class _Problem(Exception):
    """Loading without a savepoint per item met a problem: it stops there."""


class _Loader:
    def __init__(
        self,
        data: dict[str, Any],
        *,
        text: str,
        published_on: datetime.date | None,
        root: str,
        whole: bool = False,
    ):
        self.data = data
        # Loading without a savepoint per item (import_document): the first
        # problem ends the loading, which can undo no item alone.
        self.whole = whole
        self.text = text
        self.published_on = published_on
        self.root = root
        self.report = Report(counts=dict.fromkeys(SECTION_FIELDS, 0))
        self.actors: dict[str, Actor | None] = {}  # key -> actor (None: declared, not written)
        self.places: dict[str, Place | None] = {}
        self.events: dict[str, Event | None] = {}
        # The stored actors the annotation names, read for all items at once.
        self.stored = StoredActors()
        self.source: Source | None = None
        self.failed = False  # whether the item being loaded has a problem
        # What the document produced before (section -> item -> id), and now.
        self.previous: dict[str, dict[str, int]] = {}
        self.records: dict[str, dict[str, int]] = {section: {} for section in PRODUCED}

    # The run ---------------------------------------------------------------------

    def load(self, stored: Source | None = None) -> Report:
        digest = annotation_digest(self.data)
        # Kept with the history of every record written: a later run can tell
        # a corrected annotation from the one these records came from.
        pghistory.context(annotation_sha256=digest)
        if stored is None:
            self._source()
        else:
            self._stored_source(stored)
        if self.source is not None:
            pghistory.context(source_id=self.source.pk)
        sections = {}
        for section in SECTION_FIELDS:
            items = self.data.get(section) or []
            if not isinstance(items, list):
                self.problem(f"{self.root}/{section}", f"{section}: expected a list.")
                items = []
            sections[section] = items
        # Keys first, so that a reference to a later item or a failed one says so.
        for section, store in (("actors", self.actors), ("places", self.places)):
            for item in sections[section]:
                if isinstance(item, dict) and isinstance(item.get("key"), str):
                    store.setdefault(item["key"], None)
        for item in sections["events"]:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                self.events.setdefault(item["key"], None)
        if self.source is not None:
            self._read_stored_actors(sections)
        for section, items in sections.items():
            handler: Callable[[dict, str, str], None] = getattr(self, f"_{section[:-1]}")
            for index, item in enumerate(items):
                pointer = f"{self.root}/{section}/{index}"
                label = f"{section}[{index}]"
                if isinstance(item, dict) and item.get("key"):
                    label += f" ({item['key']})"
                if not isinstance(item, dict):
                    self.problem(pointer, "expected a mapping.", label=label)
                    continue
                unknown = sorted(set(item) - SECTION_FIELDS[section])
                if unknown:
                    self.problem(
                        f"{pointer}/{unknown[0]}",
                        f"unknown fields {unknown}.",
                        hint=f"The fields: {', '.join(sorted(SECTION_FIELDS[section]))}.",
                        label=label,
                        code="unknown_field",
                    )
                    continue
                wrong = [name for name, value in item.items() if not _is(value, FIELD_TYPES[name])]
                for name in wrong:
                    self.problem(
                        f"{pointer}/{name}",
                        f"{name} must be {FIELD_TYPES[name]}.",
                        label=label,
                        field=name,
                        code="invalid_type",
                    )
                if wrong or self.source is None:
                    continue  # the source was refused: nothing can cite it
                self.failed = False
                try:
                    with transaction.atomic():
                        handler(item, pointer, label)
                except _Skip:
                    pass
                except ValidationError as exc:
                    self.validation_problems(exc, pointer, label)
                except (IntegrityError, DataError) as exc:
                    self.problem(pointer, f"the database refused it: {exc}", label=label)
        if self.source is not None and not self.report.problems:
            self._remove_stale()
            annotation = {"content": _plain(self.data), "sha256": digest, "records": self.records}
            source = self.source

            def keep() -> None:
                source_update(source=source, fields={"annotation": annotation})

            if self.report.reapplied and not any(
                change["resource"] == "sources" for change in self.report.updated
            ):
                self.changed("sources", source, f"{self.root}/source", keep)
            else:
                keep()
        return self.report

    def _read_stored_actors(self, sections: dict[str, list]) -> None:
        """Read the stored actors that the items the loading will try declare
        or refer to (StoredActors.read); should the database refuse, each is
        looked up when its item is loaded, in the item's savepoint."""
        tried = {
            section: [item for item in items if _well_formed(section, item)]
            for section, items in sections.items()
        }
        try:
            with transaction.atomic():
                self.stored.read(tried["actors"], self._actor_references(tried))
        except DatabaseError:
            self.stored = StoredActors()

    def _actor_references(self, sections: dict[str, list]) -> list[Any]:
        """The references to stored actors (not to the annotation's own) that
        the items make: what resolving them will ask."""

        def entries(item: dict, name: str) -> list[Any]:
            value = item.get(name)
            return value if isinstance(value, list) else [value]

        references = [
            *(r for item in sections["affiliations"] for r in entries(item, "member")),
            *(r for item in sections["affiliations"] for r in entries(item, "organization")),
            *(
                entry.get("actor")
                for item in sections["events"]
                for entry in entries(item, "participants")
                if isinstance(entry, dict)
            ),
            *(
                r
                for item in sections["statements"]
                for name in ("speaker", "targets", "about_actors")
                for r in entries(item, name)
            ),
        ]
        return [r for r in references if not (isinstance(r, str) and r in self.actors)]

    def _source(self) -> None:
        meta = self.data.get("source") or {}
        if not isinstance(meta, dict):
            self.problem(f"{self.root}/source", "expected a mapping.", label="source")
            meta = {}
        try:
            with transaction.atomic():
                self.source = source_create(
                    text=self.text,
                    published_on=self.published_on,
                    title=str(meta.get("title") or ""),
                    publisher=str(meta.get("publisher") or ""),
                    url=str(meta.get("url") or ""),
                    language=str(meta.get("language") or "en"),
                )
            self.report.source = self.source
            self.report.created = True
        except ValidationError as exc:
            self.source_problems(exc)
        except IntegrityError:
            # The same text stored by a concurrent request since clean() looked.
            twin = Source.objects.with_text(self.text).values_list("pk", flat=True).first()
            self.problem(
                "/text",
                f"This text was stored as source {twin} by another request meanwhile.",
                code="unique",
                label="source",
                field="text",
            )

    def _stored_source(self, source: Source) -> None:
        """The annotation applied again to `source`: its description as the
        annotation gives it now, its records matched to the items."""
        self.source = self.report.source = source
        self.report.reapplied = True
        self.previous = (source.annotation or {}).get("records") or {}
        meta = self.data.get("source") or {}
        if not isinstance(meta, dict):
            self.problem(f"{self.root}/source", "expected a mapping.", label="source")
            return
        fields = {
            name: str(meta.get(name) or "")
            for name in ("title", "publisher", "url")
            if name in meta
        }
        if "language" in meta:
            fields["language"] = str(meta.get("language") or "en")
        if self.published_on is not None:
            fields["published_on"] = self.published_on
        try:
            with transaction.atomic():
                self.changed(
                    "sources",
                    source,
                    f"{self.root}/source",
                    lambda: source_update(source=source, fields=fields),
                )
        except ValidationError as exc:
            self.source_problems(exc)

    def source_problems(self, exc: ValidationError) -> None:
        for name, errors in exc.error_dict.items():
            pointer = "/text" if name == "text" else f"{self.root}/source/{name}"
            for error in errors:
                message = " ".join(error.messages)
                code = error.code or "invalid"
                self.problem(pointer, message, code=code, label="source", field=name)

    # Re-application ----------------------------------------------------------------

    def item(self, section: str, wanted: str) -> str:
        """The name under which the document's record for an item is kept:
        its key, or (without one) what identifies it; a second item of the
        same name gets "#2", and so on."""
        name, number = wanted, 1
        while name in self.records[section]:
            number += 1
            name = f"{wanted}#{number}"
        return name

    def produced(self, model: Any, section: str, name: str) -> Any:
        """The record this document produced for item `name` before, if any is left."""
        pk = self.previous.get(section, {}).get(name)
        return model.objects.filter(pk=pk).first() if pk is not None else None

    def changed(self, resource: str, record: Any, pointer: str, write: Callable[[], Any]) -> None:
        """Run `write`, an update of `record`, and report it if it changed anything."""
        before = record.revision
        write()
        after = type(record).objects.filter(pk=record.pk).values_list("revision", flat=True)
        # A record's revision goes up once in a transaction, with its first change.
        if after.first() != before:
            entry = {"pointer": pointer, "resource": resource, "id": record.pk}
            self.report.updated.append(entry)

    def update_produced(
        self,
        section: str,
        record: Any,
        spans: list[Span],
        pointer: str,
        label: str,
        update: Callable[[list[Span]], Any],
    ) -> None:
        """Update `record`, which this document produced before, as its item
        says now: `update(evidence)`, the evidence being the item's spans and
        the record's evidence from other sources; reported if anything changed."""
        evidence = self.with_other_sources(record, spans)
        self.changed(
            section,
            record,
            pointer,
            lambda: self.written(lambda: update(evidence), pointer, label, type(record)),
        )

    def create(
        self, section: str, model: Any, pointer: str, label: str, make: Callable[[], Any]
    ) -> Any:
        """A new record for the item, counted under `section`."""
        record = self.written(make, pointer, label, model)
        self.report.counts[section] += 1
        return record

    def with_other_sources(self, record: Any, spans: list[Span]) -> list[Span]:
        """`spans` and the record's evidence from other sources, which stays."""
        others = record.evidence.exclude(source=self.source).select_related("source")
        return [*spans, *(Span(source=e.source, start=e.start, end=e.end) for e in others)]

    def _remove_stale(self) -> None:
        """Delete what the document produced before and no longer describes; a
        record that cites other sources too only loses this document's evidence."""
        removals = (
            ("statements", Statement, lambda r: statement_delete(statement=r)),
            ("events", Event, lambda r: event_delete(event=r)),
            ("affiliations", Affiliation, lambda r: affiliation_delete(affiliation=r)),
        )
        for section, model, delete in removals:
            kept = set(self.records[section].values())
            stale = set(self.previous.get(section, {}).values()) - kept
            for record in model.objects.filter(pk__in=stale).order_by("pk"):
                if record.evidence.exclude(source=self.source).exists():
                    record.evidence.filter(source=self.source).delete()
                    self.report.updated.append({"resource": section, "id": record.pk})
                else:
                    self.report.deleted.append({"resource": section, "id": record.pk})
                    delete(record)

    # Problems --------------------------------------------------------------------

    def problem(self, pointer: str, detail: str, **extra: Any) -> None:
        if self.whole:
            raise _Problem
        self.report.problems.append(Problem(pointer, detail, **extra))
        self.failed = True  # the item being loaded will not be written

    def validation_problems(
        self, exc: ValidationError, pointer: str, label: str, model: Any = None
    ) -> None:
        if not hasattr(exc, "error_dict"):
            for message in exc.messages:
                self.problem(pointer, message, label=label)
            return
        for name, errors in exc.error_dict.items():
            annotation_field = FIELD_NAMES.get(name, name)
            for error in errors:
                message = " ".join(error.messages)
                hint = None
                if error.code == "invalid_choice" and model is not None:
                    hint = accepted_values(model, name)
                target = pointer if name == "__all__" else f"{pointer}/{annotation_field}"
                self.problem(
                    target,
                    message,
                    hint=hint,
                    code=error.code or "invalid",
                    label=label,
                    field="" if name == "__all__" else name,
                )

    def written(self, call: Callable[..., Any], pointer: str, label: str, model: Any) -> Any:
        """`call()`, with its validation errors recorded against `pointer`. No
        savepoint of its own: a failed write ends the item, whose savepoint
        (load()) undoes what it wrote."""
        try:
            return call()
        except ValidationError as exc:
            self.validation_problems(exc, pointer, label, model)
            raise _Skip from None

    def guard(self, model: Any, fields: dict[str, Any], pointer: str, label: str) -> None:
        """Before a write: if this item already has a problem (a reference that
        failed, a quote not found), check its own fields without writing, so
        that their problems are reported too, and skip the write."""
        if not self.failed:
            return
        try:
            model(**fields).clean_fields(
                exclude=[f.name for f in model._meta.fields if f.name not in fields]
            )
        except ValidationError as exc:
            self.validation_problems(exc, pointer, label, model)
        raise _Skip

    # References ------------------------------------------------------------------

    def actor(self, reference: Any, pointer: str, label: str) -> Actor | None:
        """An actor by annotation key, or a stored one by id, slug or identifier;
        None, with the problem recorded, when there is none."""
        hint = "Or refer to a stored actor by id, slug or identifier (wikidata:Q399)."
        return self.referred(
            "actors", self.actors, self.stored.reference, reference, pointer, label, hint
        )

    def place(self, reference: Any, pointer: str, label: str) -> Place | None:
        hint = "Or refer to a stored place by id, slug or geonames:<id>."
        return self.referred(
            "places", self.places, place_by_reference, reference, pointer, label, hint
        )

    def referred(
        self,
        section: str,
        declared: dict,
        lookup: Callable[[Any], Any],
        reference: Any,
        pointer: str,
        label: str,
        hint: str,
    ) -> Any:
        """The record `reference` names: one the annotation declares under
        `section`, else a stored one found by `lookup`; None, with the problem
        recorded."""
        noun = section[:-1]
        if isinstance(reference, str) and reference in declared:
            record = declared[reference]
            if record is None:
                self.problem(
                    pointer,
                    f"{noun} {reference!r} has problems of its own (see {section}).",
                    label=label,
                    code="depends_on_problem",
                )
            return record
        stored = lookup(reference)
        if stored is None:
            self.problem(
                pointer,
                f"unknown {noun} {reference!r} (declare it under {section}).",
                hint=hint,
                label=label,
                code="unknown_reference",
            )
        return stored

    def event(self, key: Any, pointer: str, label: str) -> Event | None:
        event = self.events.get(key) if isinstance(key, str) else None
        if event is None:
            known = isinstance(key, str) and key in self.events
            self.problem(
                pointer,
                f"event {key!r} has problems of its own (see events)."
                if known
                else f"unknown event {key!r} (give the event a key under events).",
                label=label,
                code="depends_on_problem" if known else "unknown_reference",
            )
        return event

    # Items, one method per section, named for the singular -------------------------

    def _actor(self, item: dict, pointer: str, label: str) -> None:
        key = item.get("key")
        if not isinstance(key, str) or not key:
            self.problem(f"{pointer}/key", "each actor needs a key.", label=label)
            raise _Skip
        found = find_actor(item, self.stored)
        self.resolved(found, pointer, label, key)
        if found.record is not None:
            actor = found.record
            if found.additions:
                additions = dict(found.additions)
                aliases = additions.pop("aliases", None)
                identifiers = additions.pop("identifiers", None)
                named = [*self.stored.aliases(actor), *(aliases or [])]
                held = {**self.stored.identifiers(actor), **(identifiers or {})}
                self.written(
                    lambda: actor_update(
                        actor=actor,
                        fields=additions,
                        aliases=None if aliases is None else named,
                        identifiers=None if identifiers is None else held,
                    ),
                    pointer,
                    label,
                    Actor,
                )
                self.stored.learn(actor, aliases=named, identifiers=held)
        else:
            actor = self.written(
                lambda: actor_create(
                    slug=key,
                    name=item.get("name") or "",
                    kind=item.get("kind") or "",
                    country=item.get("country") or "",
                    sector=item.get("sector") or "",
                    description=item.get("description") or "",
                    aliases=item.get("aliases") or [],
                    identifiers=item.get("identifiers") or {},
                ),
                pointer,
                label,
                Actor,
            )
            self.stored.learn(
                actor, aliases=item.get("aliases") or [], identifiers=declared_identifiers(item)
            )
            self.report.counts["actors"] += 1
        self.actors[key] = actor

    def _place(self, item: dict, pointer: str, label: str) -> None:
        key = item.get("key")
        if not isinstance(key, str) or not key:
            self.problem(f"{pointer}/key", "each place needs a key.", label=label)
            raise _Skip
        found = find_place(item)
        self.resolved(found, pointer, label, key)
        if found.record is not None:
            place = found.record
            if found.additions:
                self.written(
                    lambda: place_update(place=place, fields=dict(found.additions)),
                    pointer,
                    label,
                    Place,
                )
        else:
            place = self.written(
                lambda: place_create(
                    slug=key,
                    name=item.get("name") or "",
                    kind=item.get("kind") or "",
                    country=item.get("country") or "",
                    latitude=item.get("latitude"),
                    longitude=item.get("longitude"),
                    geonames_id=item.get("geonames_id"),
                ),
                pointer,
                label,
                Place,
            )
            self.report.counts["places"] += 1
        self.places[key] = place

    def resolved(self, found: Found, pointer: str, label: str, key: str) -> None:
        """Record how a declaration was resolved: matched, added to, in conflict."""
        for name, message in found.conflicts:
            self.problem(f"{pointer}/{name}", message, label=label, code="conflict")
        for suggestion in found.suggestions:
            self.report.suggestions.append({"pointer": pointer, "detail": suggestion})
        if found.conflicts:
            raise _Skip
        if found.record is not None:
            self.report.matched.append(
                {"pointer": pointer, "key": key, "id": found.record.pk, "by": found.by}
            )
            for name, value in found.additions.items():
                self.report.additions.append(
                    {"pointer": pointer, "id": found.record.pk, "field": name, "added": value}
                )

    def _affiliation(self, item: dict, pointer: str, label: str) -> None:
        """An affiliation already on record (same member, organisation, role and
        start) gains this document's evidence instead of being repeated."""
        start = self.bound(item.get("start"), f"{pointer}/start", label, "start")
        end = self.bound(item.get("end"), f"{pointer}/end", label, "end")
        member = self.actor(item.get("member"), f"{pointer}/member", label)
        organization = self.actor(item.get("organization"), f"{pointer}/organization", label)
        spans = self.spans(item, pointer, label)
        fields = {
            "role": item.get("role") or "",
            "start_date": start["date"],
            "start_precision": start["precision"],
            "end_date": end["date"],
            "end_precision": end["precision"],
        }
        self.guard(Affiliation, fields, pointer, label)
        assert member is not None and organization is not None  # else guard() skipped
        name = self.item(
            "affiliations",
            item.get("key")
            or f"~{member.pk}|{organization.pk}|{fields['role']}|{fields['start_date']}",
        )
        before = self.produced(Affiliation, "affiliations", name)
        existing = before or (
            Affiliation.objects.filter(
                member=member,
                organization=organization,
                role=fields["role"],
                start_date=start["date"],
            ).first()
        )
        if before is not None:
            self.update_produced(
                "affiliations",
                before,
                spans,
                pointer,
                label,
                lambda evidence: affiliation_update(
                    affiliation=before,
                    fields={"member": member, "organization": organization, **fields},
                    evidence=evidence,
                ),
            )
        elif existing is not None:
            self.written(
                lambda: evidence_attach(record=existing, spans=spans), pointer, label, Affiliation
            )
        else:
            existing = self.create(
                "affiliations",
                Affiliation,
                pointer,
                label,
                lambda: affiliation_create(
                    member=member, organization=organization, evidence=spans, **fields
                ),
            )
        self.records["affiliations"][name] = existing.pk

    def _event(self, item: dict, pointer: str, label: str) -> None:
        fields = {
            "type": item.get("type") or "",
            "title": item.get("title") or "",
            "summary": item.get("summary") or "",
            "mode": item.get("mode") or "",
            "context": item.get("context") or [],
            "status": item.get("status", "occurred"),
            "place_text": item.get("place_text") or "",
            **self.dates(item, pointer, label),
        }
        place = item.get("place")
        place = self.place(place, f"{pointer}/place", label) if place else None
        participants = []
        for index, entry in enumerate(item.get("participants") or []):
            where = f"{pointer}/participants/{index}"
            if not isinstance(entry, dict):
                self.problem(where, "expected {actor: ..., role: ...}.", label=label)
                continue
            actor = self.actor(entry.get("actor"), f"{where}/actor", label)
            participants.append((actor, entry.get("role") or ""))
        spans = self.spans(item, pointer, label)
        self.guard(Event, fields, pointer, label)
        name = self.item(
            "events",
            item.get("key") or f"~{_passages(spans)}",
        )
        event = self.produced(Event, "events", name)
        if event is not None:
            stored = event
            self.update_produced(
                "events",
                stored,
                spans,
                pointer,
                label,
                lambda evidence: event_update(
                    event=stored,
                    fields={"place": place, **fields},
                    participants=participants,
                    evidence=evidence,
                ),
            )
        else:
            event = self.create(
                "events",
                Event,
                pointer,
                label,
                lambda: event_create(
                    place=place, participants=participants, evidence=spans, **fields
                ),
            )
        if item.get("key"):
            self.events[item["key"]] = event
        self.records["events"][name] = event.pk

    def _statement(self, item: dict, pointer: str, label: str) -> None:
        fields = {
            "kind": item.get("kind") or "",
            "content": item.get("content") or "",
            "quote": item.get("quote") or "",
            "stance": item.get("stance") or "",
            **self.dates(item, pointer, label),
        }

        def actors(name: str) -> list[Actor | None]:
            return [
                self.actor(reference, f"{pointer}/{name}/{index}", label)
                for index, reference in enumerate(item.get(name) or [])
            ]

        speaker = self.actor(item.get("speaker"), f"{pointer}/speaker", label)
        targets, about_actors = actors("targets"), actors("about_actors")
        about_events = [
            self.event(key, f"{pointer}/about_events/{index}", label)
            for index, key in enumerate(item.get("about_events") or [])
        ]
        spans = self.spans(item, pointer, label)
        self.guard(Statement, fields, pointer, label)
        assert speaker is not None  # else guard() skipped
        name = self.item(
            "statements",
            item.get("key") or f"~{speaker.pk}|{_passages(spans)}",
        )
        statement = self.produced(Statement, "statements", name)
        if statement is not None:
            stored = statement
            self.update_produced(
                "statements",
                stored,
                spans,
                pointer,
                label,
                lambda evidence: statement_update(
                    statement=stored,
                    fields={"speaker": speaker, **fields},
                    targets=targets,
                    about_actors=about_actors,
                    about_events=about_events,
                    evidence=evidence,
                ),
            )
        else:
            statement = self.create(
                "statements",
                Statement,
                pointer,
                label,
                lambda: statement_create(
                    speaker=speaker,
                    targets=targets,
                    about_actors=about_actors,
                    about_events=about_events,
                    evidence=spans,
                    **fields,
                ),
            )
        self.records["statements"][name] = statement.pk

    # Values ------------------------------------------------------------------------

    def dates(self, item: dict, pointer: str, label: str) -> dict[str, Any]:
        date = item.get("date")
        if not isinstance(date, dict):
            self.problem(
                f"{pointer}/date",
                "'date' must give start, end and precision.",
                hint="For example {start: 2023-11-09, end: 2023-11-09, precision: day}.",
                label=label,
            )
            return {}
        where = f"{pointer}/date"
        return {
            "date_start": self.day(date.get("start"), f"{where}/start", label, first=True),
            "date_end": self.day(date.get("end"), f"{where}/end", label, first=False),
            "date_precision": date.get("precision", "day"),
        }

    def bound(self, value: Any, pointer: str, label: str, name: str) -> dict[str, Any]:
        """An affiliation's start or end: {date, precision}, both optional."""
        if value is None:
            return {"date": None, "precision": DatePrecision.UNKNOWN}
        if not isinstance(value, dict):
            self.problem(pointer, f"'{name}' must be {{date: ..., precision: ...}}.", label=label)
            return {"date": None, "precision": DatePrecision.UNKNOWN}
        day = self.day(value.get("date"), f"{pointer}/date", label, first=name == "start")
        return {"date": day, "precision": value.get("precision", DatePrecision.UNKNOWN)}

    def day(self, value: Any, pointer: str, label: str, *, first: bool) -> datetime.date | None:
        """A bound as written: a date, or at year or month precision the year
        (1991, "1991") or month ("1991-08"), taken as the period's first or last day."""
        if value is None or isinstance(value, datetime.date):
            return value
        written = isinstance(value, int | str) and not isinstance(value, bool)
        text = str(value).strip() if written else ""
        try:
            if re.fullmatch(r"\d{4}", text):
                year = int(text)
                return datetime.date(year, 1, 1) if first else datetime.date(year, 12, 31)
            if re.fullmatch(r"\d{4}-\d{2}", text):
                year, month = (int(part) for part in text.split("-"))
                last = calendar.monthrange(year, month)[1]
                return datetime.date(year, month, 1 if first else last)
            return date_from_iso(text)
        except ValueError as exc:
            self.problem(
                pointer,
                str(exc) if text else f"{value!r} is not a date.",
                hint="Write YYYY-MM-DD, or a year (1991) or month (1991-08) at that precision.",
                label=label,
            )
            return None

    def spans(self, item: dict, pointer: str, label: str) -> list[Span]:
        entries = item.get("evidence") or []
        if not entries:
            self.problem(
                f"{pointer}/evidence", "cites no evidence; quote at least one passage.", label=label
            )
            return []
        assert self.source is not None
        spans = []
        for index, entry in enumerate(entries):
            if isinstance(entry, dict):
                quote, occurrence = entry.get("quote", ""), entry.get("occurrence")
            else:
                quote, occurrence = entry, None
            try:
                span = span_for_quote(source=self.source, quote=str(quote), occurrence=occurrence)
                spans.append(span)
            except ValidationError as exc:
                self.problem(
                    f"{pointer}/evidence/{index}",
                    " ".join(exc.messages),
                    hint=near_miss(self.text, str(quote)),
                    label=label,
                    field="evidence",
                    code="quote_not_found",
                )
        return spans


def _passages(spans: list[Span]) -> str:
    """The passages an item cites, by offsets: what names an item without a key."""
    return ",".join(f"{span.start}:{span.end}" for span in sorted(spans, key=_offsets))


def _offsets(span: Span) -> tuple[int, int]:
    return span.start, span.end


# The annotation's names for model fields, where they differ.
FIELD_NAMES = {
    "date_start": "date/start",
    "date_end": "date/end",
    "date_precision": "date/precision",
}


def accepted_values(model: Any, name: str) -> str | None:
    """The values a choice field (or an array of choices, as `context`) accepts."""
    try:
        model_field = model._meta.get_field(name)
    except Exception:
        return None
    choices = model_field.choices or getattr(
        getattr(model_field, "base_field", None), "choices", None
    )
    if not choices:
        return None
    return "Accepted: " + ", ".join(str(value) for value, _ in choices) + "."


# Typographic forms and their plain ones: a quote typed with straight quotes
# still finds the article's curly ones, and the hint shows the exact text.
_PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
    }
)


def _normalized(text: str) -> tuple[str, list[int]]:
    """`text` with typographic characters made plain, whitespace runs made one
    space and case folded, and for each character kept its offset in `text`."""
    out, offsets = [], []
    previous_space = False
    for offset, char in enumerate(text.translate(_PLAIN)):
        if char.isspace():
            if previous_space:
                continue
            char, previous_space = " ", True
        else:
            previous_space = False
        for folded_char in char.casefold():
            out.append(folded_char)
            offsets.append(offset)
    return "".join(out), offsets


def near_miss(text: str, quote: str) -> str | None:
    """A hint for a quote not found as written: the passage of `text` it
    matches once quotes, apostrophes, dashes, spaces and case are set aside,
    or the longest stretch of it that `text` holds."""
    if not quote.strip():
        return None
    plain_text, offsets = _normalized(text)
    plain_quote, _ = _normalized(quote.strip())
    position = plain_text.find(plain_quote)
    if position != -1:
        start = offsets[position]
        end = offsets[position + len(plain_quote) - 1] + 1
        return f"The text has “{text[start:end]}” at [{start}:{end}]; quote it exactly."
    matcher = difflib.SequenceMatcher(None, plain_text, plain_quote, autojunk=False)
    match = matcher.find_longest_match(0, len(plain_text), 0, len(plain_quote))
    if match.size < max(8, len(plain_quote) // 3):
        return None
    start = offsets[match.a]
    end = offsets[match.a + match.size - 1] + 1
    return f"The closest passage is “{text[start:end]}” at [{start}:{end}]."


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
