"""Events and statements, who took part in them, and the places they happened.
Their evidence, and the sources it cites, live in the sources app.

The event vocabulary is documented in docs/vocabulary.md; its version is kept
with every event (`vocabulary_version`).
"""

import datetime
import functools
from collections.abc import Iterable

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Upper

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
from sources.models import RequiresEvidence

EVENT_VOCABULARY = "PLOVER"
EVENT_VOCABULARY_VERSION = "el-plover-1.0"


DERIVED = ("date_sort", "search_vector")  # generated columns, not history


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
        triggers = [Revision(), ChangeLog(resource="places")]

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
