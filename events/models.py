"""Events and statements, who took part in them, and the places they happened.
Their evidence, and the sources it cites, live in the sources app.

The event vocabulary is documented in docs/vocabulary.md; its version is kept
with every event (`vocabulary_version`).
"""

import datetime
import functools
from collections.abc import Iterable

import pgtrigger
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Upper

from actors.models import Actor, ActorIdentifier
from ledger.models import (
    COUNTRY_CODE_RE,
    SEARCH_CONFIG,
    SLUG_DIGITS_ONLY_RE,
    DatedInterval,
    DatePrecision,
    Mergeable,
    Revisioned,
    country_code_validator,
    format_date,
    format_interval,
    slug_not_digits_validator,
    track_history,
)
from ledger.triggers import ChangeLog, Revision, TouchesParent
from sources.models import RequiresEvidence, Source

EVENT_VOCABULARY = "PLOVER"
EVENT_VOCABULARY_VERSION = "el-plover-1.0"


DERIVED = ("date_sort", "search_vector")  # generated columns, not history


# Stored PLOVER records ------------------------------------------------------
#
# The PLOVER export (events/plover.py) reads each event's record as stored
# here rather than building it: building one costs PostgreSQL about 45 µs
# (its participants' entities, its evidence, its document's text), reading one
# about 5. A record is built by the SQL function el_plover_records(ids), the
# one home of the record's form (events/migrations/0021_plover_records.py).
#
# Every write that changes what a record holds marks its event stale in the
# same transaction (the MarksPloverStale triggers below): the event itself,
# its participants and evidence (which touch the event), an actor's or
# place's fields the record repeats, an actor's Wikidata id, a source's
# citation or annotation. At the commit a transaction rebuilds the records it
# marked (PloverStale's trigger), when they are few; more (a merge, a rename
# of a busy actor) are left marked for `manage.py refresh_plover`. Until then
# the export builds a marked or missing record as it reads it, so it is
# always current: stored records only make it faster.

PLOVER_REFRESH_AT_COMMIT = 1000  # the most records a transaction rebuilds as it commits


# After the marks of a statement, the first marks of a transaction (since its
# last refresh) add one more, `queues`, which queues the refresh at the commit
# (PloverStale's trigger): one trigger call per transaction, not one per mark.
MARK_STALE = """
    INSERT INTO events_ploverstale (event_id) {events};
    IF FOUND AND el_plover_refresh_queued() THEN
        INSERT INTO events_ploverstale (event_id, queues)
        SELECT m.event_id, true FROM events_ploverstale m WHERE m.txid = txid_current() LIMIT 1;
    END IF;
    RETURN NULL;
"""


class MarksPloverStale(pgtrigger.Trigger):
    """After a statement on this table, marks stale the stored PLOVER record of
    each event `events` selects (SQL over the statement's rows: `new_rows`,
    `old_rows`)."""

    when = pgtrigger.After
    level = pgtrigger.Statement

    def __init__(self, *, name: str, operation: pgtrigger.Operation, events: str) -> None:
        referencing = pgtrigger.Referencing(
            new=None if operation == pgtrigger.Delete else "new_rows",
            old=None if operation == pgtrigger.Insert else "old_rows",
        )
        func = MARK_STALE.format(events=events)
        super().__init__(name=name, operation=operation, referencing=referencing, func=func)


def _changed(event_ids: str, joins: str, columns: tuple[str, ...]) -> str:
    """The events (`event_ids`, an expression over `joins`) of the rows of an
    UPDATE (`n` as they are, `o` as they were) whose `columns` changed."""
    new = ", ".join(f"n.{column}" for column in columns)
    old = ", ".join(f"o.{column}" for column in columns)
    return (
        f"SELECT {event_ids} FROM new_rows n JOIN old_rows o ON o.id = n.id {joins} "
        f"WHERE ({new}) IS DISTINCT FROM ({old})"
    )


class PlaceKind(models.TextChoices):
    COUNTRY = "country", "Country"
    REGION = "region", "Region"
    CITY = "city", "City or town"
    BORDER = "border", "Border area"
    SITE = "site", "Site"
    WATER = "water", "Body of water"
    OTHER = "other", "Other"


@track_history("PlaceSnapshot")
class Place(Mergeable, Revisioned):
    """A named location. Coordinates are optional, but given together."""

    slug = models.SlugField(max_length=100, unique=True, validators=[slug_not_digits_validator])
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=20, choices=PlaceKind.choices)
    country = models.CharField(max_length=3, blank=True, validators=[country_code_validator])
    latitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    geonames_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [
            # A place declared by name is looked up so (name__iexact,
            # events.resolution.find_place); without it, a scan of every place.
            models.Index(Upper("name"), name="events_place_name_upper"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=PlaceKind.values), name="events_place_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(country="") | Q(country__regex=COUNTRY_CODE_RE),
                name="events_place_country_alpha3",
            ),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True, longitude__isnull=True)
                | Q(
                    latitude__gte=-90,
                    latitude__lte=90,
                    longitude__gte=-180,
                    longitude__lte=180,
                ),
                name="events_place_coordinates_valid",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="events_place_name_not_empty"),
            models.CheckConstraint(
                condition=~Q(slug__regex=SLUG_DIGITS_ONLY_RE), name="events_place_slug_not_digits"
            ),
        ]
        triggers = [
            Revision(),
            ChangeLog(resource="places"),
            MarksPloverStale(
                name="plover_stale_update",
                operation=pgtrigger.Update,
                events=_changed(
                    "e.id",
                    "JOIN events_event e ON e.place_id = n.id",
                    ("name", "slug", "kind", "country", "geonames_id", "latitude", "longitude"),
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EventType(models.TextChoices):
    """PLOVER's sixteen event types, plus DISSOLVE (see docs/vocabulary.md)."""

    AGREE = "AGREE", "Agree"
    CONSULT = "CONSULT", "Consult"
    SUPPORT = "SUPPORT", "Support"
    CONCEDE = "CONCEDE", "Concede"
    COOPERATE = "COOPERATE", "Cooperate"
    AID = "AID", "Aid"
    RETREAT = "RETREAT", "Retreat"
    REQUEST = "REQUEST", "Request"
    ACCUSE = "ACCUSE", "Accuse"
    REJECT = "REJECT", "Reject"
    THREATEN = "THREATEN", "Threaten"
    PROTEST = "PROTEST", "Protest"
    SANCTION = "SANCTION", "Sanction"
    MOBILIZE = "MOBILIZE", "Mobilize"
    COERCE = "COERCE", "Coerce"
    ASSAULT = "ASSAULT", "Assault"
    DISSOLVE = "DISSOLVE", "Dissolve"


class QuadClass(models.TextChoices):
    VERBAL_COOPERATION = "verbal_cooperation", "Verbal cooperation"
    MATERIAL_COOPERATION = "material_cooperation", "Material cooperation"
    VERBAL_CONFLICT = "verbal_conflict", "Verbal conflict"
    MATERIAL_CONFLICT = "material_conflict", "Material conflict"


QUAD_CLASS = {
    EventType.AGREE: QuadClass.VERBAL_COOPERATION,
    EventType.CONSULT: QuadClass.VERBAL_COOPERATION,
    EventType.SUPPORT: QuadClass.VERBAL_COOPERATION,
    EventType.CONCEDE: QuadClass.VERBAL_COOPERATION,
    EventType.COOPERATE: QuadClass.MATERIAL_COOPERATION,
    EventType.AID: QuadClass.MATERIAL_COOPERATION,
    EventType.RETREAT: QuadClass.MATERIAL_COOPERATION,
    EventType.REQUEST: QuadClass.VERBAL_CONFLICT,
    EventType.ACCUSE: QuadClass.VERBAL_CONFLICT,
    EventType.REJECT: QuadClass.VERBAL_CONFLICT,
    EventType.THREATEN: QuadClass.VERBAL_CONFLICT,
    EventType.PROTEST: QuadClass.MATERIAL_CONFLICT,
    EventType.SANCTION: QuadClass.MATERIAL_CONFLICT,
    EventType.MOBILIZE: QuadClass.MATERIAL_CONFLICT,
    EventType.COERCE: QuadClass.MATERIAL_CONFLICT,
    EventType.ASSAULT: QuadClass.MATERIAL_CONFLICT,
}

# What each type means (served by GET /api/v1/vocabulary/; docs/vocabulary.md).
EVENT_TYPE_DESCRIPTION = {
    EventType.AGREE: "Agree to, offer or promise cooperation",
    EventType.CONSULT: "Meet, negotiate, hold talks, summon for talks",
    EventType.SUPPORT: "Express support or approval",
    EventType.CONCEDE: "Yield, cede control, recognise a claim",
    EventType.COOPERATE: "Start, resume or expand cooperation (exercises, partnerships)",
    EventType.AID: "Provide material, military or humanitarian aid, including intervening "
    "to provide security",
    EventType.RETREAT: "Withdraw, demobilise, release",
    EventType.REQUEST: "Demand or request something of another actor",
    EventType.ACCUSE: "Accuse, criticise formally, complain officially (e.g. summoning an "
    "ambassador)",
    EventType.REJECT: "Reject a proposal, demand or claim",
    EventType.THREATEN: "Threaten force or sanctions",
    EventType.PROTEST: "Demonstrate, strike, boycott",
    EventType.SANCTION: "Impose sanctions, cut ties, expel",
    EventType.MOBILIZE: "Mobilise or raise the alert of forces",
    EventType.COERCE: "Seize, arrest, blockade, use repression short of assault",
    EventType.ASSAULT: "Use armed force: attacks, invasions, wars",
    EventType.DISSOLVE: "Extension of PLOVER: a state, organisation or regime breaks up or "
    "ceases to exist",
}


class EventContext(models.TextChoices):
    """Why an event happened, or what it is about; an event may have several."""

    MILITARY = "military", "Military"
    SECURITY = "security", "Security"
    DIPLOMATIC = "diplomatic", "Diplomatic"
    TERRITORY = "territory", "Territory"
    POLITICAL = "political", "Political"
    ECONOMIC = "economic", "Economic"
    INFRASTRUCTURE = "infrastructure", "Infrastructure"
    HUMANITARIAN = "humanitarian", "Humanitarian"
    HUMAN_RIGHTS = "human_rights", "Human rights"
    ETHNIC = "ethnic", "Ethnic"
    HISTORICAL = "historical", "Historical"


class EventStatus(models.TextChoices):
    OCCURRED = "occurred", "Occurred"
    ONGOING = "ongoing", "Ongoing"
    PLANNED = "planned", "Planned"
    HYPOTHETICAL = "hypothetical", "Hypothetical"
    NEGATED = "negated", "Negated (reported as not happening)"


# What a status means where its label does not say it all (the vocabulary endpoint).
EVENT_STATUS_DESCRIPTION = {
    EventStatus.ONGOING: "Still going on: its date_end is the last date it was reported as "
    "still going on",
    EventStatus.HYPOTHETICAL: "Possible, feared or called for",
    EventStatus.NEGATED: "Reported as not having happened",
}


class ReviewStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    REVIEWED = "reviewed", "Reviewed"


class EventQuerySet(models.QuerySet):
    def involving(
        self, actors: Iterable | None = None, *, roles: Iterable[str] = ()
    ) -> "EventQuerySet":
        """Events in which one of `actors` (actors or their ids; anyone when
        None) takes part in one of `roles` (any role when empty). Each event
        once: a semi-join, not a join."""
        conditions = {}
        if actors is not None:
            conditions["actor__in"] = actors
        if roles:
            conditions["role__in"] = roles
        participants = EventParticipant.objects.filter(event=OuterRef("pk"), **conditions)
        return self.filter(Exists(participants))


@track_history("EventSnapshot", exclude=DERIVED)
class Event(Revisioned, DatedInterval):
    """Who did what to whom, when and where, as reported by its evidence.

    For an ongoing event, `date_end` is the last date it was reported as still
    going on. Every event cites at least one evidence span: a deferred
    constraint trigger checks this when the transaction commits.
    """

    type = models.CharField(max_length=20, choices=EventType.choices)
    mode = models.SlugField(
        max_length=50, blank=True, help_text="How it was done, e.g. invasion, summons."
    )
    context = ArrayField(
        models.CharField(max_length=20, choices=EventContext.choices),
        default=list,
        blank=True,
        help_text="Why it happened or what it is about; several values allowed.",
    )
    vocabulary_version = models.CharField(max_length=30, default=EVENT_VOCABULARY_VERSION)
    status = models.CharField(
        max_length=20, choices=EventStatus.choices, default=EventStatus.OCCURRED
    )
    title = models.CharField(max_length=300)
    summary = models.TextField(blank=True)
    place = models.ForeignKey(
        Place, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    place_text = models.CharField(
        max_length=300, blank=True, help_text="The place as the source writes it."
    )
    review_status = models.CharField(
        max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.DRAFT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("title", "summary", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    objects = EventQuerySet.as_manager()

    class Meta(DatedInterval.Meta):
        ordering = ["date_sort", "id"]
        constraints = [
            *DatedInterval.Meta.constraints,
            models.CheckConstraint(
                condition=Q(type__in=EventType.values), name="events_event_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=EventStatus.values), name="events_event_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(review_status__in=ReviewStatus.values),
                name="events_event_review_status_valid",
            ),
            models.CheckConstraint(condition=~Q(title=""), name="events_event_title_not_empty"),
            models.CheckConstraint(
                condition=Q(context__contained_by=EventContext.values),
                name="events_event_context_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["date_sort", "id"], name="events_event_date_id"),
            # Counts by period (events/counts.py) read only these columns: index-only
            # scans, and few distinct keys, so deduplicated to a small index.
            models.Index(fields=["date_sort", "date_precision"], name="events_event_date_prec"),
            models.Index(
                fields=["type", "date_sort", "date_precision"], name="events_event_type_date"
            ),
            GinIndex(fields=["search_vector"], name="events_event_search"),
        ]
        triggers = [
            Revision(),
            ChangeLog(resource="events"),
            RequiresEvidence(column="event_id"),  # checked at commit
            MarksPloverStale(
                name="plover_stale_insert",
                operation=pgtrigger.Insert,
                events="SELECT id FROM new_rows",
            ),
            MarksPloverStale(
                name="plover_stale_update",
                operation=pgtrigger.Update,
                events="SELECT id FROM new_rows",
            ),
            # Its record is deleted by the refresh (as every write to the stored
            # records is, under the lock), not here: a delete that took the
            # record's row lock before that lock could deadlock with a refresh.
            MarksPloverStale(
                name="plover_stale_delete",
                operation=pgtrigger.Delete,
                events="SELECT id FROM old_rows",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def quad_class(self) -> str | None:
        return QUAD_CLASS.get(self.type)

    @property
    def date_display(self) -> str:
        return event_date_display(self.date_start, self.date_end, self.date_precision, self.status)


@functools.lru_cache(maxsize=8192)  # pure; a page of events repeats a few dates
def event_date_display(
    start: datetime.date | None, end: datetime.date | None, precision: str, status: str
) -> str:
    """An event's dates at their precision; an ongoing event says as of when."""
    if status == EventStatus.ONGOING and end is not None:
        as_of = f"ongoing as of {format_date(end, DatePrecision.DAY)}"
        if start is None:
            return as_of
        return f"since {format_date(start, precision)}, {as_of}"
    return format_interval(start, end, precision)


class ParticipantRole(models.TextChoices):
    INITIATOR = "initiator", "Initiator"
    TARGET = "target", "Target"
    MEDIATOR = "mediator", "Mediator"
    PARTICIPANT = "participant", "Participant"


# What a role means where its label does not say it all (the vocabulary endpoint).
PARTICIPANT_ROLE_DESCRIPTION = {
    ParticipantRole.INITIATOR: "The actor who acts",
    ParticipantRole.TARGET: "The actor acted upon",
    ParticipantRole.MEDIATOR: "A third party between the others, e.g. the mediator of talks",
    ParticipantRole.PARTICIPANT: "A party with no direction, e.g. each side of a war",
}


@track_history("EventParticipantSnapshot")
class EventParticipant(models.Model):
    """An actor taking part in an event in one role."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="participants")
    actor = models.ForeignKey(
        "actors.Actor", on_delete=models.PROTECT, related_name="participations"
    )
    role = models.CharField(max_length=20, choices=ParticipantRole.choices)

    class Meta:
        ordering = ["event_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "actor", "role"], name="events_participant_unique"
            ),
            models.CheckConstraint(
                condition=Q(role__in=ParticipantRole.values), name="events_participant_role_valid"
            ),
        ]
        indexes = [models.Index(fields=["actor", "role"], name="events_participant_actor_role")]
        triggers = [TouchesParent("event")]

    def __str__(self) -> str:
        return f"{self.actor} ({self.role})"


class StatementKind(models.TextChoices):
    CLAIM = "claim", "Claim"
    ASSESSMENT = "assessment", "Assessment"
    DEMAND = "demand", "Demand or call"
    APPEAL = "appeal", "Appeal"
    CONCERN = "concern", "Concern"
    CRITICISM = "criticism", "Criticism"
    ACKNOWLEDGEMENT = "acknowledgement", "Acknowledgement"
    DENIAL = "denial", "Denial"
    THREAT = "threat", "Threat"
    PROMISE = "promise", "Promise"


class Stance(models.TextChoices):
    SUPPORTIVE = "supportive", "Supportive"
    NEUTRAL = "neutral", "Neutral"
    CRITICAL = "critical", "Critical"


@track_history("StatementSnapshot", exclude=DERIVED)
class Statement(Revisioned, DatedInterval):
    """What an actor said, as reported speech: the speaker, the kind of speech
    act, a paraphrase, and the verbatim words when the source quotes them.
    Every statement cites at least one evidence span (checked at commit).
    """

    speaker = models.ForeignKey("actors.Actor", on_delete=models.PROTECT, related_name="statements")
    kind = models.CharField(max_length=20, choices=StatementKind.choices)
    content = models.TextField(help_text="What was said, paraphrased.")
    quote = models.TextField(blank=True, help_text="The speaker's verbatim words, when quoted.")
    stance = models.CharField(max_length=10, choices=Stance.choices, blank=True)
    about_events = models.ManyToManyField(
        Event, blank=True, related_name="statements", through="StatementEvent"
    )
    review_status = models.CharField(
        max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.DRAFT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("content", "quote", config=SEARCH_CONFIG),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta(DatedInterval.Meta):
        ordering = ["date_sort", "id"]
        constraints = [
            *DatedInterval.Meta.constraints,
            models.CheckConstraint(
                condition=Q(kind__in=StatementKind.values), name="events_statement_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(stance="") | Q(stance__in=Stance.values),
                name="events_statement_stance_valid",
            ),
            models.CheckConstraint(
                condition=~Q(content=""), name="events_statement_content_not_empty"
            ),
            models.CheckConstraint(
                condition=Q(review_status__in=ReviewStatus.values),
                name="events_statement_review_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["date_sort", "id"], name="events_statement_date_id"),
            GinIndex(fields=["search_vector"], name="events_statement_search"),
        ]
        triggers = [
            Revision(),
            ChangeLog(resource="statements"),
            RequiresEvidence(column="statement_id"),  # checked at commit
        ]

    def __str__(self) -> str:
        return f"{self.speaker}: {self.content[:80]}"

    def actors_in_role(self, role: str) -> list:
        """Actors linked in `role`, read from the (usually prefetched) links."""
        return [link.actor for link in self.actor_links.all() if link.role == role]

    @property
    def targets(self) -> list:
        return self.actors_in_role(StatementActorRole.TARGET)

    @property
    def about_actors(self) -> list:
        return self.actors_in_role(StatementActorRole.ABOUT)


class StatementActorRole(models.TextChoices):
    TARGET = "target", "Addressee or target"
    ABOUT = "about", "Actor the statement is about"


@track_history("StatementActorSnapshot")
class StatementActor(models.Model):
    """An actor a statement is addressed to (`target`) or speaks about (`about`)."""

    statement = models.ForeignKey(Statement, on_delete=models.CASCADE, related_name="actor_links")
    actor = models.ForeignKey(
        "actors.Actor", on_delete=models.PROTECT, related_name="statement_links"
    )
    role = models.CharField(max_length=10, choices=StatementActorRole.choices)

    class Meta:
        ordering = ["statement_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["statement", "actor", "role"], name="events_statement_actor_unique"
            ),
            models.CheckConstraint(
                condition=Q(role__in=StatementActorRole.values),
                name="events_statement_actor_role_valid",
            ),
        ]
        indexes = [models.Index(fields=["actor", "role"], name="events_statement_actor_role")]
        triggers = [TouchesParent("statement")]

    def __str__(self) -> str:
        return f"{self.actor} ({self.role})"


@track_history("StatementEventSnapshot")
class StatementEvent(models.Model):
    """An event a statement is about."""

    statement = models.ForeignKey(Statement, on_delete=models.CASCADE, related_name="event_links")
    # An event that statements are about cannot be deleted (409): deleting it
    # would silently change those statements.
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="statement_links")

    class Meta:
        ordering = ["statement_id", "id"]
        # As a refused delete names it: "still referenced by statements (in
        # their about_events)".
        verbose_name = "statement about an event"
        verbose_name_plural = "statements (in their about_events)"
        constraints = [
            models.UniqueConstraint(
                fields=["statement", "event"], name="events_statement_event_unique"
            )
        ]
        triggers = [TouchesParent("statement")]

    def __str__(self) -> str:
        return str(self.event)


class PloverRecord(models.Model):
    """An event's PLOVER record (one JSON Lines line, without its newline), as
    el_plover_records() built it when the event was last refreshed. Deleted
    by the refresh that follows its event's delete; until then the export,
    which reads events, does not see it."""

    event = models.OneToOneField(
        Event, on_delete=models.DO_NOTHING, primary_key=True, related_name="+", db_constraint=False
    )
    record = models.TextField()

    class Meta:
        db_table = "events_ploverrecord"

    def __str__(self) -> str:
        return f"PLOVER record of event {self.pk}"


class PloverStale(models.Model):
    """A mark: the stored record of `event_id` may be out of date (written by
    a transaction, `txid`, that changed the event or what its record repeats).
    Marks are only ever added and deleted, never updated, so that a refresh
    deletes exactly the marks its snapshot saw (el_plover_refresh). One mark
    of each transaction `queues` its refresh at the commit (MARK_STALE)."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.BigIntegerField(db_index=True)
    txid = models.BigIntegerField(db_default=models.Func(function="txid_current"), db_index=True)
    queues = models.BooleanField(default=False, db_default=False)

    class Meta:
        db_table = "events_ploverstale"
        triggers = [
            pgtrigger.Trigger(
                name="refreshes_plover_records",
                when=pgtrigger.After,
                operation=pgtrigger.Insert,
                timing=pgtrigger.Deferred,
                condition=pgtrigger.Condition("NEW.queues"),
                func=f"""
    PERFORM set_config('el.plover_refresh_queued', '', true);
    IF current_setting('transaction_isolation') = 'read committed' AND (
        SELECT count(*) FROM (
            SELECT 1 FROM events_ploverstale WHERE txid = txid_current()
            LIMIT {PLOVER_REFRESH_AT_COMMIT + 1}
        ) mine
    ) <= {PLOVER_REFRESH_AT_COMMIT} THEN
        PERFORM el_plover_refresh(txid_current(), NULL);
    END IF;
    RETURN NULL;
""",
            )
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} marked stale by transaction {self.txid}"


# What the records repeat of actors and sources: their triggers, registered
# here (pgtrigger.register), as this app depends on theirs and not the reverse.
pgtrigger.register(
    MarksPloverStale(
        name="plover_stale_update",
        operation=pgtrigger.Update,
        events=_changed(
            "ep.event_id",
            "JOIN events_eventparticipant ep ON ep.actor_id = n.id",
            ("name", "slug", "kind", "country", "sector"),
        ),
    )
)(Actor)
_WIKIDATA_EVENTS = (
    "SELECT ep.event_id FROM {rows} i JOIN events_eventparticipant ep ON ep.actor_id = i.actor_id "
    "WHERE i.scheme = 'wikidata'"
)
pgtrigger.register(
    MarksPloverStale(
        name="plover_stale_insert",
        operation=pgtrigger.Insert,
        events=_WIKIDATA_EVENTS.format(rows="new_rows"),
    ),
    MarksPloverStale(
        name="plover_stale_update",
        operation=pgtrigger.Update,
        events=f"{_WIKIDATA_EVENTS.format(rows='new_rows')} UNION "
        f"{_WIKIDATA_EVENTS.format(rows='old_rows')}",
    ),
    MarksPloverStale(
        name="plover_stale_delete",
        operation=pgtrigger.Delete,
        events=_WIKIDATA_EVENTS.format(rows="old_rows"),
    ),
)(ActorIdentifier)
pgtrigger.register(
    MarksPloverStale(
        name="plover_stale_update",
        operation=pgtrigger.Update,
        events=_changed(
            "DISTINCT v.event_id",
            "JOIN events_evidence v ON v.source_id = n.id AND v.event_id IS NOT NULL",
            ("sha256", "title", "publisher", "url", "language", "published_on", "annotation"),
        ),
    )
)(Source)
