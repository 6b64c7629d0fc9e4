"""Events as PLOVER records (JSON Lines), both ways.

The record follows the "Data Fields" chapter of the PLOVER manual
(openeventdata/PLOVER, PLOVER_MANUAL.tex, draft 0.7b1: the tables "PLOVER
JSON", "Information object for entities", "Information object for text",
"Information object for citations" and the location object), with the named
fields the manual invites providers to add where the ledger holds more
(docs/plover.md lists every field and where it comes from).

Export: one record per event, as stored (events.models.PloverRecord, built
by the SQL function el_plover_records()), written by PostgreSQL (`COPY`), so
it streams in constant memory with the event list's filters, like
events/export.py.

Import: the records are grouped by their text (one source document each),
each group converted into an annotation (fixtures/README.md) and loaded
through events.documents.import_document, all in one transaction: actors and
places are resolved among those stored, history records the writes, a dry
run stores nothing, and every bad record is reported (by line) before
anything is written.
"""

import datetime
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection as primary  # refreshes write
from django.db import transaction
from psycopg import ClientCursor
from psycopg.abc import Buffer
from rest_framework.utils.json import strict_constant

from actors.models import Sector
from events.documents import ANNOTATION_FORMAT, Problem, Report, import_document
from events.models import (
    EVENT_VOCABULARY_VERSION,
    EventType,
    ParticipantRole,
)
from ledger.api.parsers import MAX_JSON_DEPTH, _contains_nul, json_depth_exceeds
from ledger.models import COUNTRY_CODE_RE
from ledger.routing import reading as connection  # the database this request reads

# A record's id is `<the first 12 hex digits of its text's sha256>:<name>`,
# the name being the event's item in its document's annotation (its key):
# stable across databases, unlike the event's id. An event no annotation
# produced (made through the API) is named `event-<id>`.
ID_DIGEST_LENGTH = 12

# Which list of the record holds a participant of each role: `actor` (who
# acts; "participant" is a party with no direction, e.g. each side of a war),
# `recipient` (the manual's word for the target) and `mediator` (the ledger's).
LIST_ROLES = {
    "actor": (ParticipantRole.INITIATOR, ParticipantRole.PARTICIPANT),
    "recipient": (ParticipantRole.TARGET,),
    "mediator": (ParticipantRole.MEDIATOR,),
}


# Export ---------------------------------------------------------------------


# Unfiltered exports read records in blocks of ids, each block one row of the
# COPY (its records joined by newlines): a row costs the client about as much
# as a block does, and a block is a thousand records.
EXPORT_BLOCK = 1000


def export_query(
    ids_sql: str | None, ids_params, *, id_range: tuple[int, int] | None = None
) -> str:
    """The COPY statement writing the PLOVER record of each event whose id
    `ids_sql` selects (every event when None), in id order; `id_range`
    (inclusive) narrows it to a slice of ids. Its output is read with
    `export_lines`.

    Each record is read as stored (events.models.PloverRecord), or built as
    it is read (el_plover_records(), the one home of its form) when the
    event's stored record is missing or marked stale: the export is as
    current as its snapshot, whatever is left to refresh. An event without a
    record (no evidence) is left out."""
    connection.ensure_connection()
    record = "coalesce(r.record, (SELECT b.record FROM el_plover_records(ARRAY[e.id]) b))"
    events = (
        "FROM events_event e LEFT JOIN events_ploverrecord r ON r.event_id = e.id "
        "AND r.event_id NOT IN (SELECT m.event_id FROM events_ploverstale m) "
    )
    if ids_sql is not None:
        with ClientCursor(connection.connection) as cursor:
            ids = cursor.mogrify(ids_sql, ids_params)
        conditions = f"e.id IN ({ids})"
        if id_range is not None:
            conditions += f" AND e.id BETWEEN {int(id_range[0])} AND {int(id_range[1])}"
        query = f"SELECT {record} {events}WHERE {conditions} ORDER BY e.id"
    else:
        if id_range is not None:
            low, high = str(int(id_range[0])), str(int(id_range[1]))
        else:
            low, high = "(SELECT min(id) FROM events_event)", "(SELECT max(id) FROM events_event)"
        query = (
            f"SELECT (SELECT string_agg({record} || E'\\n', '' ORDER BY e.id) {events}"
            f"WHERE e.id BETWEEN g AND least(g + {EXPORT_BLOCK - 1}, {high})) "
            f"FROM generate_series({low}, {high}, {EXPORT_BLOCK}) g"
        )
    # CSV with a quote and delimiter JSON never holds unescaped: the text as it
    # is, a block (holding newlines) quoted.
    return f"COPY ({query}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"


def export_lines(row: Buffer) -> Buffer:
    """A row of `export_query`'s COPY as JSON Lines (a view of it, not a
    copy): a block (its lines end with a newline) unquoted; an empty block or
    an event without a record (an empty row) left out."""
    if row[:1] == b"\x01":
        return row[1:-2]
    if row == b"\n":
        return row[:0]
    return row


def refresh_records(
    *, rebuild: bool = False, batch: int = 1_000, progress: Callable[[int], None] | None = None
) -> int:
    """Store the PLOVER record of every event marked stale or without one (with
    `rebuild`, of every event: after a migration changed the form), `batch`
    events a transaction, each under the refresh lock; returns how many were
    built. What a write leaves marked (events.models, "Stored PLOVER records")
    is refreshed here; the export is correct without it, only slower."""
    done = 0

    def step(sql: str, params: list) -> int:
        nonlocal done
        with transaction.atomic(), primary.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")
            cursor.execute(sql, params)
            (count,) = cursor.fetchone()
        done += count
        if progress is not None and count:
            progress(done)
        return count

    while step("SELECT el_plover_refresh(NULL, %s)", [batch]):
        pass
    missing = (
        ""
        if rebuild
        else ("AND NOT EXISTS (SELECT 1 FROM events_ploverrecord r WHERE r.event_id = e.id) ")
    )
    last = 0
    while True:
        with primary.cursor() as cursor:
            cursor.execute(
                f"SELECT array(SELECT e.id FROM events_event e WHERE e.id > %s {missing}"
                "ORDER BY e.id LIMIT %s)",
                [last, batch],
            )
            (ids,) = cursor.fetchone()
        if not ids:
            return done
        step("SELECT el_plover_store(%s)", [ids])
        last = ids[-1]


# Import ---------------------------------------------------------------------


@dataclass
class LineProblem:
    """One thing wrong with a record: its line (1-based; in a JSON body, its
    place in `records`), a JSON pointer into the body (JSON Lines read as the
    list of its lines: `/<line - 1>/text_info/0/end`; JSON:
    `/records/<line - 1>/...`), what, and a hint where one helps."""

    line: int
    pointer: str
    detail: str
    code: str = "invalid"
    hint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "line": self.line,
            "pointer": self.pointer,
            "detail": self.detail,
            "code": self.code,
        }
        if self.hint:
            entry["hint"] = self.hint
        return entry


@dataclass
class _Document:
    """The records of one text, on their way to an annotation."""

    text: str
    first_line: int
    source: dict[str, str] = field(default_factory=dict)
    published_on: datetime.date | None = None
    actors: dict[str, tuple[dict, int]] = field(default_factory=dict)
    places: dict[str, tuple[dict, int]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    event_lines: list[int] = field(default_factory=list)
    # The lines that refer to each declared actor and place.
    actor_lines: dict[str, list[int]] = field(default_factory=dict)
    place_lines: dict[str, list[int]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def annotation(self) -> dict[str, Any]:
        return {
            "format": ANNOTATION_FORMAT,
            "source": self.source,
            "actors": [declaration for declaration, _ in self.actors.values()],
            "places": [declaration for declaration, _ in self.places.values()],
            "events": self.events,
        }


@dataclass
class PloverReport:
    """What importing PLOVER records did, or (dry run, or problems) would do:
    a report per document, and every bad record."""

    dry_run: bool
    documents: list[tuple[_Document, Report]] = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)


class _Records:
    """The records of a body, checked one by one and grouped by document."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # the pointer to the list of records
        self.problems: list[LineProblem] = []
        self.ignored: list[dict[str, Any]] = []
        self.documents: dict[str, _Document] = {}

    def problem(self, line: int, path: str, detail: str, **kwargs: Any) -> None:
        self.problems.append(LineProblem(line, f"{self.prefix}/{line - 1}{path}", detail, **kwargs))

    def read_list(self, body: list[Any]) -> None:
        """Records as a JSON body holds them (parsed by the API's strict parser)."""
        for number, record in enumerate(body, start=1):
            if not isinstance(record, dict):
                self.problem(number, "", "a record is a JSON object.")
                continue
            self.record(number, record)
        if not body:
            self.problem(1, "", "the body holds no records.", code="empty")

    def read_lines(self, body: str) -> None:
        """Records as JSON Lines: one JSON object a line; blank lines are skipped."""
        for number, raw in enumerate(body.splitlines(), start=1):
            if not raw.strip():
                continue
            if json_depth_exceeds(raw, MAX_JSON_DEPTH):
                self.problem(number, "", f"nested more than {MAX_JSON_DEPTH} levels deep.")
                continue
            try:
                record = json.loads(raw, parse_constant=strict_constant)
            except ValueError as exc:
                self.problem(number, "", f"not valid JSON: {exc}.", code="parse_error")
                continue
            if not isinstance(record, dict):
                self.problem(number, "", "a record is a JSON object.")
                continue
            if _contains_nul(record):
                self.problem(number, "", "strings must not contain NUL (\\u0000) characters.")
                continue
            self.record(number, record)
        if not self.documents and not self.problems:
            self.problem(1, "", "the body holds no records.", code="empty")

    def record(self, line: int, record: dict) -> None:
        problems_before = len(self.problems)
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            self.problem(
                line,
                "/text",
                "each record carries the full text of its document in `text`.",
                code="required",
                hint="The ledger keeps every fact with the passage that states it.",
            )
            return
        event = self.event(line, record, text)
        if len(self.problems) > problems_before or event is None:
            return
        document = self.documents.get(text)
        if document is None:
            document = self.documents[text] = _Document(text=text, first_line=line)
            self.cite(line, record, document)
        participants = self.participants(line, record, document)
        place = self.place(line, record, document)
        if len(self.problems) > problems_before:
            return
        event["participants"] = participants
        event.update(place)
        document.events.append(event)
        document.event_lines.append(line)
        if record.get("other_evidence"):
            self.ignored.append(
                {
                    "line": line,
                    "pointer": f"{self.prefix}/{line - 1}/other_evidence",
                    "detail": "passages in other documents are not imported with this one: "
                    "import those documents' records too.",
                }
            )

    def event(self, line: int, record: dict, text: str) -> dict | None:
        """The annotation's event item for `record`, without its participants and place."""
        key = record.get("id")
        if not isinstance(key, str) or not key.strip():
            self.problem(line, "/id", "each record needs an `id` (text).", code="required")
            return None
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_DIGEST_LENGTH]
        if key.startswith(f"{digest}:"):
            key = key[len(digest) + 1 :]
        types = record.get("event")
        if not isinstance(types, list) or len(types) != 1:
            self.problem(
                line,
                "/event",
                "`event` lists exactly one event category: the ledger codes one per event.",
                hint="Split a record with several categories into one record each.",
            )
        elif types[0] not in EventType.values:
            self.problem(
                line,
                "/event/0",
                f"unknown event code {types[0]!r}.",
                code="unknown_code",
                hint=f"Accepted: {', '.join(EventType.values)} (GET /api/v1/vocabulary/).",
            )
        cite = record.get("cite_info")
        if cite is not None and not isinstance(cite, dict):
            self.problem(line, "/cite_info", "`cite_info` is an object.")
        codebook = cite.get("codebook") if isinstance(cite, dict) else None
        if codebook is not None and codebook != EVENT_VOCABULARY_VERSION:
            self.problem(
                line,
                "/cite_info/codebook",
                f"unknown codebook {codebook!r}: this ledger codes with "
                f"{EVENT_VOCABULARY_VERSION}.",
                code="unknown_code",
            )
        modes = record.get("mode") or []
        if not isinstance(modes, list) or len(modes) > 1:
            self.problem(line, "/mode", "`mode` lists at most one mode.")
            modes = []
        context = record.get("context") or []
        spans = self.spans(line, record, text)
        item: dict[str, Any] = {
            "key": key,
            "type": types[0] if isinstance(types, list) and types else None,
            "context": context,
            "title": record.get("title") or f"{types[0] if types else ''} ({key})",
            "summary": record.get("summary") or "",
            "date": {
                "start": record.get("date"),
                "end": record.get("enddate"),
                "precision": record.get("date_precision")
                or ("day" if record.get("date") else "unknown"),
            },
            "evidence": spans,
        }
        if modes:
            item["mode"] = modes[0]
        if record.get("status"):
            item["status"] = record["status"]
        return item

    def spans(self, line: int, record: dict, text: str) -> list[dict]:
        """The evidence entries of `text_info`: each passage as a quote and,
        where the quote occurs more than once, which occurrence."""
        info = record.get("text_info")
        quotes = record.get("event_text")
        if isinstance(info, dict):
            info = [info]
        if not isinstance(info, list) or not info:
            self.problem(
                line,
                "/text_info",
                "`text_info` gives the passages the record was coded from "
                "({start, end} character offsets into `text`).",
                code="required",
            )
            return []
        spans: list[dict[str, Any]] = []
        for index, span in enumerate(info):
            start = span.get("start") if isinstance(span, dict) else None
            end = span.get("end") if isinstance(span, dict) else None
            if not all(isinstance(n, int) and not isinstance(n, bool) for n in (start, end)):
                self.problem(
                    line, f"/text_info/{index}", "a passage is {start, end}: whole numbers."
                )
                continue
            assert isinstance(start, int) and isinstance(end, int)
            if not 0 <= start < end <= len(text):
                self.problem(
                    line,
                    f"/text_info/{index}",
                    f"the offsets [{start}:{end}] lie outside the text "
                    f"({len(text)} characters) or are empty.",
                    code="offset_out_of_range",
                )
                continue
            quote = text[start:end]
            if isinstance(quotes, list) and index < len(quotes) and quotes[index] != quote:
                self.problem(
                    line,
                    f"/event_text/{index}",
                    f"the text at [{start}:{end}] is {quote!r}, not {quotes[index]!r}.",
                    code="quote_mismatch",
                )
                continue
            starts = _occurrences(text, quote)
            if len(starts) == 1:
                spans.append({"quote": quote})
            else:
                spans.append({"quote": quote, "occurrence": starts.index(start) + 1})
        return spans

    def cite(self, line: int, record: dict, document: _Document) -> None:
        cite = record.get("cite_info") or {}
        document.source = {
            "title": cite.get("title") or "",
            "publisher": cite.get("publication") or "",
            "url": cite.get("url") or "",
            "language": cite.get("language") or "en",
        }
        published = cite.get("published_on")
        if published is not None:
            try:
                document.published_on = datetime.date.fromisoformat(str(published))
            except ValueError:
                self.problem(
                    line, "/cite_info/published_on", f"{published!r} is not a date (YYYY-MM-DD)."
                )

    def participants(self, line: int, record: dict, document: _Document) -> list[dict]:
        participants = []
        for name, roles in LIST_ROLES.items():
            entities = record.get(name) or []
            if not isinstance(entities, list):
                self.problem(line, f"/{name}", f"`{name}` is a list of entity objects.")
                continue
            for index, entity in enumerate(entities):
                where = f"/{name}/{index}"
                if not isinstance(entity, dict):
                    self.problem(line, where, "an entity is an object.")
                    continue
                role = entity.get("role") or roles[0]
                if role not in roles:
                    self.problem(
                        line,
                        f"{where}/role",
                        f"role {role!r} does not go in `{name}`: {', '.join(roles)} does.",
                    )
                    continue
                reference = self.entity(line, where, entity, document)
                if reference is not None:
                    participants.append({"actor": reference, "role": role})
        return participants

    def entity(self, line: int, where: str, entity: dict, document: _Document) -> str | None:
        """The annotation's reference to the actor `entity` describes: its key,
        declared for the document; without a key, the stored actor with its
        Wikidata id, or else with its country code as ISO 3166 identifier."""
        code, sector = entity.get("code"), entity.get("sector")
        bad = False
        if code is not None and not (isinstance(code, str) and re.match(COUNTRY_CODE_RE, code)):
            self.problem(
                line,
                f"{where}/code",
                f"unknown actor code {code!r}.",
                code="unknown_code",
                hint="An ISO 3166-1 alpha-3 code in capitals (ARM), or IGO, EUR.",
            )
            bad = True
        if sector is not None and sector not in Sector.values:
            self.problem(
                line,
                f"{where}/sector",
                f"unknown sector code {sector!r}.",
                code="unknown_code",
                hint=f"Accepted: {', '.join(Sector.values)}.",
            )
            bad = True
        if bad:
            return None
        key, wikidata = entity.get("key"), entity.get("identifier_id")
        if key is not None and not isinstance(key, str):
            self.problem(line, f"{where}/key", "an actor's key is text (its slug).")
            return None
        if not key:
            if wikidata:
                return f"wikidata:{wikidata}"
            if code:
                return f"iso3166:{code}"
            self.problem(
                line,
                where,
                "an entity names its actor: a `key`, an `identifier_id` (Wikidata) or a `code`.",
                code="required",
            )
            return None
        declaration: dict[str, Any] = {
            "key": key,
            "name": entity.get("identifier_text") or entity.get("entity_text") or key,
            "kind": entity.get("kind") or "",
        }
        if code:
            declaration["country"] = code
        if sector:
            declaration["sector"] = sector
        if wikidata:
            declaration["identifiers"] = {"wikidata": wikidata}
        self.declare(line, where, "actor", document.actors, document.actor_lines, declaration)
        return key

    def place(self, line: int, record: dict, document: _Document) -> dict:
        location = record.get("event_loc")
        if location is None:
            return {}
        if not isinstance(location, dict):
            self.problem(line, "/event_loc", "`event_loc` is a location object.")
            return {}
        fields: dict[str, Any] = {}
        if location.get("extracted_place"):
            fields["place_text"] = location["extracted_place"]
        key, geonames_id = location.get("key"), location.get("geonameid")
        if key is not None and not isinstance(key, str):
            self.problem(line, "/event_loc/key", "a place's key is text (its slug).")
            return {}
        if key:
            declaration = {
                "key": key,
                "name": location.get("resolved_place") or key,
                "kind": location.get("kind") or "",
                "country": location.get("country_code") or "",
                "latitude": location.get("lat"),
                "longitude": location.get("lon"),
                "geonames_id": geonames_id,
            }
            declaration = {name: value for name, value in declaration.items() if value is not None}
            self.declare(
                line, "/event_loc", "place", document.places, document.place_lines, declaration
            )
            fields["place"] = key
        elif geonames_id is not None:
            fields["place"] = f"geonames:{geonames_id}"
        return fields

    def declare(
        self,
        line: int,
        where: str,
        noun: str,
        declared: dict[str, tuple[dict, int]],
        lines: dict[str, list[int]],
        declaration: dict,
    ) -> None:
        key = declaration["key"]
        earlier = declared.get(key)
        if earlier is None:
            declared[key] = (declaration, line)
        elif earlier[0] != declaration:
            self.problem(
                line,
                where,
                f"{noun} {key!r} is described differently on line {earlier[1]} of the same "
                "document.",
                code="conflict",
            )
            return
        lines.setdefault(key, [])
        if line not in lines[key]:
            lines[key].append(line)


def _occurrences(text: str, quote: str) -> list[int]:
    """Where `quote` starts in `text`, overlapping matches too: as
    sources.services.locate_quote counts occurrences."""
    starts, position = [], text.find(quote)
    while position != -1:
        starts.append(position)
        position = text.find(quote, position + 1)
    return starts


_ITEM_POINTER = re.compile(r"^/(actors|places|events)/(\d+)(/.*)?$")


def _line_problems(document: _Document, problem: Problem, prefix: str) -> list[LineProblem]:
    """A problem the documents path found, at the records it comes from: an
    event's at its line, an actor's or place's at every line that uses it,
    the text's at every line of the document."""
    match = _ITEM_POINTER.match(problem.pointer)
    if match is None:
        lines = sorted(set(document.event_lines)) or [document.first_line]
        where = "/text" if problem.pointer == "/text" else ""
    else:
        section, index = match.group(1), int(match.group(2))
        where = ""
        if section == "events":
            lines = [document.event_lines[index]]
        else:
            declared = document.actors if section == "actors" else document.places
            by_line = document.actor_lines if section == "actors" else document.place_lines
            key = list(declared)[index]
            lines = by_line.get(key, [declared[key][1]])
    detail = f"{problem.label}: {problem.detail}" if problem.label else problem.detail
    return [
        LineProblem(
            line, f"{prefix}/{line - 1}{where}", detail, code=problem.code, hint=problem.hint
        )
        for line in lines
    ]


def import_plover(body: str | list[Any], *, dry_run: bool = False) -> PloverReport:
    """Store the events of PLOVER records (JSON Lines text, or the list of a
    JSON body's `records`), each document with its
    events, in one transaction, or nothing: a bad record anywhere, or a dry
    run, stores nothing, and the report lists every bad record by line.

    Records are grouped by their `text`: each group is one source, loaded
    with events.documents.import_document (resolution, history). A text
    already stored is refused, as POST /documents/ refuses it: applying the
    records to it would delete what its annotation holds beyond events."""
    if isinstance(body, str):
        records = _Records(prefix="")
        records.read_lines(body)
    else:
        records = _Records(prefix="/records")
        records.read_list(body)
    report = PloverReport(dry_run=dry_run, problems=records.problems, ignored=records.ignored)
    if records.problems:
        return report
    with transaction.atomic():
        for document in records.documents.values():
            result = import_document(
                text=document.text,
                annotation=document.annotation(),
                published_on=document.published_on,
                dry_run=dry_run,
            )
            report.documents.append((document, result))
            for problem in result.problems:
                report.problems.extend(_line_problems(document, problem, records.prefix))
        if report.problems or dry_run:
            transaction.set_rollback(True)
    report.problems.sort(key=lambda problem: (problem.line, problem.pointer))
    return report
