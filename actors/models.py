"""Actors: who acts (states, people, bodies, forces, organisations), their names,
external identifiers and affiliations."""

from django.db import models
from django.db.models import F, Q

from events.models import (
    COUNTRY_CODE_RE,
    DatePrecision,
    Revisioned,
    country_code_validator,
    format_date,
    track_history,
)


class ActorKind(models.TextChoices):
    COUNTRY = "country", "Country or state"
    PERSON = "person", "Person"
    GOVERNMENT = "government", "Government body"
    MILITARY = "military", "Armed force"
    IGO = "igo", "Intergovernmental organisation"
    ORGANIZATION = "organization", "Organisation"
    PARTY = "party", "Political party"
    GROUP = "group", "Group or population"
    COLLECTIVE = "collective", "Collective (e.g. the international community)"


class Sector(models.TextChoices):
    """PLOVER/CAMEO-style sector codes."""

    GOV = "GOV", "Government"
    MIL = "MIL", "Military"
    REB = "REB", "Rebels"
    PTY = "PTY", "Political party"
    JUD = "JUD", "Judiciary"
    LEG = "LEG", "Legislature"
    CVL = "CVL", "Civilians"
    MED = "MED", "Media"
    BUS = "BUS", "Business"
    IGO = "IGO", "Intergovernmental"
    NGO = "NGO", "Non-governmental"


class ActorQuerySet(models.QuerySet):
    def with_identifier(self, scheme: str, value: str) -> "ActorQuerySet":
        return self.filter(identifiers__scheme=scheme, identifiers__value=value)


@track_history("ActorSnapshot")
class Actor(Revisioned):
    """Someone who acts or speaks.

    `id` is the stable public identifier: it comes from an identity column and is
    never reused, even after a deletion. `slug` is a readable handle used by the
    seed annotations.
    """

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=300)
    kind = models.CharField(max_length=20, choices=ActorKind.choices)
    country = models.CharField(
        max_length=3,
        blank=True,
        validators=[country_code_validator],
        help_text="ISO 3166-1 alpha-3 code, or a PLOVER code such as IGO or EUR.",
    )
    sector = models.CharField(max_length=3, choices=Sector.choices, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ActorQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=ActorKind.values), name="actors_actor_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(country="") | Q(country__regex=COUNTRY_CODE_RE),
                name="actors_actor_country_alpha3",
            ),
            models.CheckConstraint(
                condition=Q(sector="") | Q(sector__in=Sector.values),
                name="actors_actor_sector_valid",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="actors_actor_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


@track_history("ActorAliasSnapshot")
class ActorAlias(models.Model):
    """Another name the actor goes by ("Moscow" for Russia, "Pashinyan")."""

    actor = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=300)
    language = models.CharField(max_length=35, blank=True, help_text="BCP 47 tag, e.g. en.")

    class Meta:
        ordering = ["actor_id", "name"]
        verbose_name_plural = "actor aliases"
        constraints = [
            models.UniqueConstraint(fields=["actor", "name"], name="actors_alias_unique_per_actor"),
            models.CheckConstraint(condition=~Q(name=""), name="actors_alias_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


@track_history("ActorIdentifierSnapshot")
class ActorIdentifier(models.Model):
    """An identifier of the actor in another system: (`wikidata`, `Q399`).

    One value per scheme per actor, and one actor per (scheme, value).
    """

    actor = models.ForeignKey(Actor, on_delete=models.CASCADE, related_name="identifiers")
    scheme = models.SlugField(max_length=30, help_text="wikidata, iso3166, cameo, ...")
    value = models.CharField(max_length=200)

    class Meta:
        ordering = ["actor_id", "scheme"]
        constraints = [
            models.UniqueConstraint(
                fields=["actor", "scheme"], name="actors_identifier_one_per_scheme"
            ),
            models.UniqueConstraint(
                fields=["scheme", "value"], name="actors_identifier_value_unique"
            ),
            models.CheckConstraint(
                condition=Q(scheme__regex=r"^[a-z0-9][a-z0-9_-]*$"),
                name="actors_identifier_scheme_format",
            ),
            models.CheckConstraint(
                condition=~Q(value=""), name="actors_identifier_value_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"


@track_history("AffiliationSnapshot")
class Affiliation(Revisioned):
    """A person or body holding a role in an organisation ("Prime Minister" of
    Armenia), over an interval whose ends each carry their own precision.
    An empty start or end means the source does not say.
    """

    member = models.ForeignKey(Actor, on_delete=models.PROTECT, related_name="affiliations")
    organization = models.ForeignKey(Actor, on_delete=models.PROTECT, related_name="members")
    role = models.CharField(max_length=200)
    start_date = models.DateField(null=True, blank=True)
    start_precision = models.CharField(
        max_length=10, choices=DatePrecision.choices, default=DatePrecision.UNKNOWN
    )
    end_date = models.DateField(null=True, blank=True)
    end_precision = models.CharField(
        max_length=10, choices=DatePrecision.choices, default=DatePrecision.UNKNOWN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["member_id", "organization_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(member=F("organization")), name="actors_affiliation_not_self"
            ),
            models.CheckConstraint(
                condition=Q(start_date__isnull=True)
                | Q(end_date__isnull=True)
                | Q(start_date__lte=F("end_date")),
                name="actors_affiliation_date_order",
            ),
            models.CheckConstraint(
                condition=Q(start_precision__in=DatePrecision.values)
                & Q(end_precision__in=DatePrecision.values),
                name="actors_affiliation_precision_valid",
            ),
            models.CheckConstraint(condition=~Q(role=""), name="actors_affiliation_role_not_empty"),
            models.UniqueConstraint(
                fields=["member", "organization", "role", "start_date"],
                nulls_distinct=False,
                name="actors_affiliation_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member} — {self.role}, {self.organization}"

    def _start_display(self) -> str:
        """The start at its precision, or a dash when the source does not say."""
        return format_date(self.start_date, self.start_precision) if self.start_date else "—"

    def _end_display(self) -> str:
        return format_date(self.end_date, self.end_precision) if self.end_date else "—"

    _start_display.short_description = "from"  # the admin's column headings
    _end_display.short_description = "until"
    start_display = property(_start_display)
    end_display = property(_end_display)
