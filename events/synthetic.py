"""A synthetic dataset shaped like news-derived event data, for load tests and
benchmarks: states, leaders, armed forces and organisations; events between
them with two to four participants; statements; places; and news reports
whose sentences the events and statements cite as evidence.

Everything follows from the seed: the same seed, size and batch size give the
same records (ids come from the database's sequences). Every record is marked
as synthetic: actor slugs and source publishers say so.
"""

import datetime
import random
from dataclasses import dataclass, field

from django.utils.text import slugify

from actors.models import Actor
from events.models import (
    EVENT_VOCABULARY_VERSION,
    Event,
    EventContext,
    EventParticipant,
    EventStatus,
    EventType,
    Place,
    Statement,
    StatementActor,
    StatementEvent,
    StatementKind,
)
from ledger.bulk import TIMESTAMPS, BulkLoader, Table
from sources.models import Evidence, Source

PUBLISHER = "Synthetic Wire"
EVENTS_PER_SOURCE = 10
STATEMENTS_PER_SOURCE = 2
ACTORS_PER_EVENT = 0.1
PLACES_PER_EVENT = 0.01

COUNTRIES = [
    ("ARM", "Armenia", "Yerevan"),
    ("AZE", "Azerbaijan", "Baku"),
    ("GEO", "Georgia", "Tbilisi"),
    ("RUS", "Russia", "Moscow"),
    ("UKR", "Ukraine", "Kyiv"),
    ("TUR", "Turkey", "Ankara"),
    ("IRN", "Iran", "Tehran"),
    ("FRA", "France", "Paris"),
    ("DEU", "Germany", "Berlin"),
    ("USA", "United States", "Washington"),
    ("GBR", "United Kingdom", "London"),
    ("CHN", "China", "Beijing"),
    ("IND", "India", "New Delhi"),
    ("PAK", "Pakistan", "Islamabad"),
    ("ISR", "Israel", "Jerusalem"),
    ("EGY", "Egypt", "Cairo"),
    ("SYR", "Syria", "Damascus"),
    ("IRQ", "Iraq", "Baghdad"),
    ("SAU", "Saudi Arabia", "Riyadh"),
    ("ETH", "Ethiopia", "Addis Ababa"),
    ("SDN", "Sudan", "Khartoum"),
    ("NGA", "Nigeria", "Abuja"),
    ("MLI", "Mali", "Bamako"),
    ("COD", "DR Congo", "Kinshasa"),
    ("KEN", "Kenya", "Nairobi"),
    ("BRA", "Brazil", "Brasilia"),
    ("COL", "Colombia", "Bogota"),
    ("VEN", "Venezuela", "Caracas"),
    ("MEX", "Mexico", "Mexico City"),
    ("POL", "Poland", "Warsaw"),
    ("SRB", "Serbia", "Belgrade"),
    ("KAZ", "Kazakhstan", "Astana"),
    ("AFG", "Afghanistan", "Kabul"),
    ("MMR", "Myanmar", "Naypyidaw"),
    ("PHL", "Philippines", "Manila"),
    ("JPN", "Japan", "Tokyo"),
    ("KOR", "South Korea", "Seoul"),
    ("PRK", "North Korea", "Pyongyang"),
    ("YEM", "Yemen", "Sanaa"),
    ("LBY", "Libya", "Tripoli"),
]
GIVEN = [
    "Anna",
    "Armen",
    "Bakhyt",
    "Carlos",
    "Daria",
    "Elif",
    "Farid",
    "Giorgi",
    "Hana",
    "Ilham",
    "Jonas",
    "Karen",
    "Lale",
    "Mariam",
]
FAMILY = [
    "Aliyev",
    "Babayan",
    "Chen",
    "Demir",
    "Esposito",
    "Fischer",
    "Gasparyan",
    "Haddad",
    "Ivanova",
    "Jansen",
    "Kaya",
    "Lopez",
    "Mammadov",
    "Novak",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rahimi",
    "Sato",
    "Tkachenko",
]
ORGANISATIONS = [
    ("igo", "Monitoring Mission"),
    ("organization", "Relief Committee"),
    ("group", "Displaced Persons' Council"),
    ("party", "Unity Party"),
    ("organization", "Press Association"),
]
TOWNS = ["North", "South", "East", "West", "Upper", "Lower", "New", "Old"]
TOWN_ROOTS = ["ford", "haven", "gate", "field", "bridge", "burg", "port", "dale"]

# event type -> (verb phrase, title verb, mode, contexts)
VERBS = {
    EventType.AGREE: ("agreed on a ceasefire with", "agrees ceasefire with", "ceasefire"),
    EventType.CONSULT: ("held talks with", "holds talks with", "talks"),
    EventType.SUPPORT: ("voiced support for", "backs", "endorsement"),
    EventType.CONCEDE: ("made concessions to", "concedes to", "concession"),
    EventType.COOPERATE: ("signed a trade deal with", "signs trade deal with", "trade-deal"),
    EventType.AID: ("sent humanitarian aid to", "sends aid to", "humanitarian-aid"),
    EventType.RETREAT: ("withdrew troops from positions facing", "withdraws from", "withdrawal"),
    EventType.REQUEST: ("asked for negotiations with", "seeks negotiations with", "request"),
    EventType.ACCUSE: ("accused", "accuses", "accusation"),
    EventType.REJECT: ("rejected the proposal of", "rejects proposal of", "rejection"),
    EventType.THREATEN: ("threatened sanctions against", "threatens", "threat"),
    EventType.PROTEST: ("staged protests against", "protests against", "demonstration"),
    EventType.SANCTION: ("imposed sanctions on", "sanctions", "sanctions"),
    EventType.MOBILIZE: ("mobilised troops near", "mobilises near", "troop-buildup"),
    EventType.COERCE: ("blockaded supply routes of", "blockades", "blockade"),
    EventType.ASSAULT: ("shelled positions of", "shells", "shelling"),
    EventType.DISSOLVE: ("dissolved its union with", "dissolves union with", "dissolution"),
}
CONTEXTS = {
    "military": [EventContext.MILITARY, EventContext.SECURITY],
    "diplomatic": [EventContext.DIPLOMATIC, EventContext.POLITICAL],
    "economic": [EventContext.ECONOMIC],
    "humanitarian": [EventContext.HUMANITARIAN],
}
TYPE_CONTEXT = {
    EventType.AID: "humanitarian",
    EventType.COOPERATE: "economic",
    EventType.SANCTION: "economic",
    EventType.ASSAULT: "military",
    EventType.MOBILIZE: "military",
    EventType.RETREAT: "military",
    EventType.COERCE: "military",
}
# Conflict-heavy, as news coverage is.
TYPE_WEIGHTS = {t: 1 for t in EventType}
TYPE_WEIGHTS.update({EventType.ASSAULT: 6, EventType.ACCUSE: 4, EventType.CONSULT: 4})
STATEMENT_WORDS = [
    "we will defend our borders",
    "the talks were constructive",
    "this is a violation of the agreement",
    "civilians must be protected",
    "we call for restraint on all sides",
    "the sanctions are unjustified",
]
FIRST_DAY = datetime.date(1990, 1, 1)
DAYS = (datetime.date(2025, 12, 31) - FIRST_DAY).days

# The rules the row triggers enforce, checked on each whole batch instead
# (ledger.bulk.Table.checks): each query finds a row that breaks one.
EVENT_CHECKS = (
    (
        "An event cites no evidence",
        "SELECT e.id FROM bulk_events_event e WHERE NOT EXISTS "
        "(SELECT 1 FROM bulk_events_evidence v WHERE v.event_id = e.id)",
    ),
    (
        "An event's place does not exist",
        "SELECT e.id, e.place_id FROM bulk_events_event e WHERE e.place_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM bulk_events_place p WHERE p.id = e.place_id) "
        "AND NOT EXISTS (SELECT 1 FROM events_place p WHERE p.id = e.place_id)",
    ),
)
PARTICIPANT_CHECKS = (
    (
        "A participant's actor or event does not exist",
        "SELECT p.event_id, p.actor_id FROM bulk_events_eventparticipant p "
        "WHERE NOT EXISTS (SELECT 1 FROM bulk_actors_actor a WHERE a.id = p.actor_id) "
        "AND NOT EXISTS (SELECT 1 FROM actors_actor a WHERE a.id = p.actor_id) "
        "OR NOT EXISTS (SELECT 1 FROM bulk_events_event e WHERE e.id = p.event_id)",
    ),
)
STATEMENT_CHECKS = (
    (
        "A statement cites no evidence",
        "SELECT s.id FROM bulk_events_statement s WHERE NOT EXISTS "
        "(SELECT 1 FROM bulk_events_evidence v WHERE v.statement_id = s.id)",
    ),
    (
        "A statement's speaker, actor or event does not exist",
        "SELECT s.id FROM bulk_events_statement s WHERE NOT EXISTS "
        "(SELECT 1 FROM bulk_actors_actor a WHERE a.id = s.speaker_id) AND NOT EXISTS "
        "(SELECT 1 FROM actors_actor a WHERE a.id = s.speaker_id) "
        "UNION ALL SELECT l.statement_id FROM bulk_events_statementactor l WHERE NOT EXISTS "
        "(SELECT 1 FROM bulk_actors_actor a WHERE a.id = l.actor_id) AND NOT EXISTS "
        "(SELECT 1 FROM actors_actor a WHERE a.id = l.actor_id) "
        "UNION ALL SELECT l.statement_id FROM bulk_events_statementevent l WHERE NOT EXISTS "
        "(SELECT 1 FROM bulk_events_event e WHERE e.id = l.event_id) AND NOT EXISTS "
        "(SELECT 1 FROM events_event e WHERE e.id = l.event_id)",
    ),
)
EVIDENCE_CHECKS = (
    (
        "An evidence quote is not the source's text at its offsets",
        "SELECT v.source_id, v.start, v.end FROM bulk_events_evidence v "
        "LEFT JOIN bulk_events_source n ON n.id = v.source_id "
        "WHERE v.start >= v.end OR char_length(v.quote) <> v.end - v.start "
        "OR substr(coalesce(n.text, (SELECT s.text FROM events_source s "
        "WHERE s.id = v.source_id)), v.start + 1, v.end - v.start) IS DISTINCT FROM v.quote",
    ),
    (
        "Evidence cites an event or statement that does not exist",
        "SELECT v.event_id, v.statement_id FROM bulk_events_evidence v "
        "WHERE (v.event_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM bulk_events_event e WHERE e.id = v.event_id) AND NOT EXISTS "
        "(SELECT 1 FROM events_event e WHERE e.id = v.event_id)) "
        "OR (v.statement_id IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM bulk_events_statement s WHERE s.id = v.statement_id) AND NOT EXISTS "
        "(SELECT 1 FROM events_statement s WHERE s.id = v.statement_id))",
    ),
)

TABLES = [
    Table(
        Actor,
        ("id", "slug", "name", "kind", "country", "sector", "description"),
        TIMESTAMPS,
        "actors",
    ),
    Table(
        Place,
        ("id", "slug", "name", "kind", "country", "latitude", "longitude"),
        TIMESTAMPS,
        "places",
    ),
    Table(
        Source,
        ("id", "title", "publisher", "url", "published_on", "language", "text"),
        {**TIMESTAMPS, "sha256": Source.DIGEST_SQL.format("text")},
        "sources",
    ),
    Table(
        Event,
        (
            "id",
            "type",
            "mode",
            "context",
            "status",
            "title",
            "summary",
            "date_start",
            "date_end",
            "date_precision",
            "place_id",
            "place_text",
            "review_status",
        ),
        {**TIMESTAMPS, "vocabulary_version": f"'{EVENT_VOCABULARY_VERSION}'"},
        "events",
        EVENT_CHECKS,
    ),
    Table(EventParticipant, ("event_id", "actor_id", "role"), checks=PARTICIPANT_CHECKS),
    Table(
        Statement,
        (
            "id",
            "speaker_id",
            "kind",
            "content",
            "quote",
            "stance",
            "date_start",
            "date_end",
            "date_precision",
            "review_status",
        ),
        TIMESTAMPS,
        "statements",
        STATEMENT_CHECKS,
    ),
    Table(StatementActor, ("statement_id", "actor_id", "role")),
    Table(StatementEvent, ("statement_id", "event_id")),
    Table(
        Evidence,
        ("source_id", "start", "end", "quote", "event_id", "statement_id"),
        checks=EVIDENCE_CHECKS,
    ),
]


@dataclass
class Batch:
    rows: dict[str, list[tuple]] = field(default_factory=dict)

    def add(self, model, row: tuple) -> None:
        self.rows.setdefault(model._meta.db_table, []).append(row)

    def count(self, model) -> int:
        return len(self.rows.get(model._meta.db_table, []))


@dataclass
class ActorInfo:
    id: int
    name: str
    country: str


class SyntheticData:
    """Generates batches of related rows; `batch(events)` returns the rows of
    `events` events with their share of actors, places, sources, statements
    and evidence."""

    def __init__(self, seed: int = 1):
        self.seed = seed
        self.batches = 0
        self.actors: list[ActorInfo] = []
        self.places: list[tuple[int, str, str]] = []  # id, name, country
        self.types = list(TYPE_WEIGHTS)
        self.weights = list(TYPE_WEIGHTS.values())

    def batch(self, events: int) -> Batch:
        self.batches += 1
        rng = random.Random(f"{self.seed}:{self.batches}")
        batch = Batch()
        self._actors(rng, batch, max(len(COUNTRIES), round(events * ACTORS_PER_EVENT)))
        self._places(rng, batch, max(len(COUNTRIES), round(events * PLACES_PER_EVENT)))
        event_ids = iter(BulkLoader.reserve_ids(Event, events))
        sources = -(-events // EVENTS_PER_SOURCE)
        source_ids = BulkLoader.reserve_ids(Source, sources)
        statement_ids = iter(BulkLoader.reserve_ids(Statement, sources * STATEMENTS_PER_SOURCE))
        left = events
        for source_id in source_ids:
            count = min(EVENTS_PER_SOURCE, left)
            left -= count
            self._report(
                rng, batch, source_id, [next(event_ids) for _ in range(count)], statement_ids
            )
        return batch

    # Actors and places ---------------------------------------------------------

    def _actors(self, rng: random.Random, batch: Batch, wanted: int) -> None:
        """Top up the actors to `wanted` new ones per batch: every country
        first, then leaders, forces and organisations of random countries."""
        ids = BulkLoader.reserve_ids(Actor, wanted)
        for index, actor_id in enumerate(ids):
            if self.batches == 1 and index < len(COUNTRIES):
                code, name, _ = COUNTRIES[index]
                kind, sector, description = "country", "", f"The state of {name}."
            else:
                code, country, _ = rng.choice(COUNTRIES)
                roll = rng.random()
                if roll < 0.5:
                    name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
                    kind, sector, description = "person", "GOV", f"A politician of {country}."
                elif roll < 0.75:
                    name = f"{country} {rng.choice(['Armed Forces', 'Border Guard', 'Navy'])}"
                    kind, sector, description = "military", "MIL", f"A force of {country}."
                elif roll < 0.9:
                    name = f"{country} {rng.choice(['Ministry of Defence', 'Foreign Ministry'])}"
                    kind, sector, description = "government", "GOV", f"A body of {country}."
                else:
                    kind, label = rng.choice(ORGANISATIONS)
                    name = f"{country} {label}"
                    sector = "IGO" if kind == "igo" else "NGO"
                    description = f"An organisation active in {country}."
            slug = f"syn-{slugify(name)}-{actor_id}"
            batch.add(Actor, (actor_id, slug, name, kind, code, sector, description))
            self.actors.append(ActorInfo(actor_id, name, code))

    def _places(self, rng: random.Random, batch: Batch, wanted: int) -> None:
        ids = BulkLoader.reserve_ids(Place, wanted)
        for index, place_id in enumerate(ids):
            code, _, capital = COUNTRIES[index % len(COUNTRIES)]
            if index < len(COUNTRIES) and self.batches == 1:
                name, kind = capital, "city"
            else:
                name = f"{rng.choice(TOWNS)} {capital.split()[0]}{rng.choice(TOWN_ROOTS)}"
                kind = rng.choice(["city", "region", "border", "site"])
            latitude = round(rng.uniform(-60, 70), 6)
            longitude = round(rng.uniform(-170, 170), 6)
            batch.add(
                Place,
                (
                    place_id,
                    f"syn-{slugify(name)}-{place_id}",
                    name,
                    kind,
                    code,
                    latitude,
                    longitude,
                ),
            )
            self.places.append((place_id, name, code))

    # Reports ----------------------------------------------------------------------

    def _report(self, rng, batch: Batch, source_id: int, event_ids: list[int], statement_ids):
        """One news report: a sentence per event and per statement, each cited."""
        published = FIRST_DAY + datetime.timedelta(days=rng.randrange(DAYS))
        header = f"Synthetic report {source_id}, {published:%d %B %Y}.\n\n"
        parts = [header]
        offset = len(header)
        cited_events = []
        for event_id in event_ids:
            sentence, event_row, participants = self._event(rng, event_id, published)
            batch.add(Event, event_row)
            for actor_id, role in participants:
                batch.add(EventParticipant, (event_id, actor_id, role))
            batch.add(
                Evidence, (source_id, offset, offset + len(sentence), sentence, event_id, None)
            )
            cited_events.append((event_id, participants))
            parts.append(sentence + " ")
            offset += len(sentence) + 1
        for _ in range(STATEMENTS_PER_SOURCE):
            statement_id = next(statement_ids)
            speaker = rng.choice(self.actors)
            words = rng.choice(STATEMENT_WORDS)
            sentence = f"{speaker.name} said: “{words}.”"
            target = rng.choice(self.actors)
            about_event, participants = rng.choice(cited_events)
            batch.add(
                Statement,
                (
                    statement_id,
                    speaker.id,
                    rng.choice(StatementKind.values),
                    f"{speaker.name} said that {words}.",
                    words,
                    "",
                    published,
                    published,
                    "day",
                    "draft",
                ),
            )
            if target.id != speaker.id:
                batch.add(StatementActor, (statement_id, target.id, "target"))
            batch.add(StatementEvent, (statement_id, about_event))
            batch.add(
                Evidence, (source_id, offset, offset + len(sentence), sentence, None, statement_id)
            )
            parts.append(sentence + " ")
            offset += len(sentence) + 1
        batch.add(
            Source,
            (
                source_id,
                f"Synthetic report {source_id}",
                PUBLISHER,
                f"https://synthetic.example.org/reports/{source_id}",
                published,
                "en",
                "".join(parts).rstrip(),
            ),
        )

    def _event(self, rng, event_id: int, published: datetime.date):
        event_type = rng.choices(self.types, self.weights)[0]
        phrase, title_verb, mode = VERBS[event_type]
        count = rng.choice((2, 2, 2, 3, 3, 4))
        chosen = rng.sample(self.actors, count)
        initiator, target = chosen[0], chosen[1]
        roles = [(initiator.id, "initiator"), (target.id, "target")]
        roles += [(a.id, rng.choice(["mediator", "participant"])) for a in chosen[2:]]
        place_id, place, _ = rng.choice(self.places)
        day = published - datetime.timedelta(days=rng.randrange(3))
        sentence = f"On {day:%d %B %Y}, {initiator.name} {phrase} {target.name} near {place}."
        title = f"{initiator.name} {title_verb} {target.name}"
        context = CONTEXTS[TYPE_CONTEXT.get(event_type, "diplomatic")]
        status = EventStatus.ONGOING if rng.random() < 0.05 else EventStatus.OCCURRED
        summary = sentence if rng.random() < 0.25 else ""
        row = (
            event_id,
            event_type,
            mode,
            context,
            status,
            title[:300],
            summary,
            day,
            day,
            "day",
            place_id,
            place,
            rng.choice(("draft", "reviewed")),
        )
        return sentence, row, roles
