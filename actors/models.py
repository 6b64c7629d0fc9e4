"""Actors: who acts (states, people, bodies, forces, organisations), their names,
external identifiers and affiliations."""

import re
import unicodedata
from dataclasses import dataclass

from django.contrib.postgres.indexes import OpClass
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Exists, F, Func, OuterRef, Q, Value
from django.db.models.functions import Lower, Upper

from ledger.models import (
    COUNTRY_CODE_RE,
    SLUG_DIGITS_ONLY_RE,
    DatePrecision,
    Mergeable,
    Revisioned,
    country_code_validator,
    format_date,
    slug_not_digits_validator,
    track_history,
)
from ledger.triggers import ChangeLog, Revision, TouchesParent
from sources.models import RequiresEvidence

# ISO 3166-1 alpha-3 codes assigned today (ISO 3166 Maintenance Agency, as
# published by Debian's iso-codes 4.15).
_ASSIGNED = """
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA
    BGD BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN
    CIV CMR COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU
    EGY ERI ESH ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB
    GNQ GRC GRD GRL GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL
    ISR ITA JAM JEY JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO
    LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR
    MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN PAK PAN PCN PER
    PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS SHN SJM
    SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK
    TKL TKM TLS TON TTO TUN TUR TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM
    VUT WLF WSM YEM ZAF ZMB ZWE
"""
ISO_3166_ALPHA3 = frozenset(_ASSIGNED.split())
# Codes ISO 3166-1 assigned once and has since withdrawn (ISO 3166-3), such as
# SUN for the Soviet Union: the identifiers of former states.
_WITHDRAWN = """
    AFI ANT ATB ATN BUR BYS CSK CTE DDR DHY FXX GEL HVO JTN MID NHB NTZ PCI PCZ PUS RHO SCG
    SKM SUN TMP VDR WAK YMD YUG ZAR
"""
ISO_3166_FORMER_ALPHA3 = frozenset(_WITHDRAWN.split())


@dataclass(frozen=True)
class IdentifierScheme:
    """A system that identifies actors, and the form of its identifiers. Values
    are compared in their canonical case (`upper`), so wikidata:q399 is Q399."""

    label: str
    pattern: str
    example: str
    upper: bool = True
    codes: frozenset[str] | None = None  # when only these values exist

    def normalized(self, value: str) -> str:
        """The canonical value; ValidationError when it cannot be one of this scheme."""
        canonical = value.strip().upper() if self.upper else value.strip()
        if not re.fullmatch(self.pattern, canonical):
            raise ValidationError(
                f"Not a valid {self.label}: expected something like {self.example}.",
                code="invalid_identifier",
            )
        if self.codes is not None and canonical not in self.codes:
            raise ValidationError(
                f"{canonical} is not an assigned {self.label}.",
                code="invalid_identifier",
            )
        return canonical


# The schemes an actor may have identifiers in; any other is refused.
IDENTIFIER_SCHEMES = {
    "wikidata": IdentifierScheme("Wikidata item", r"Q[1-9][0-9]{0,11}", "Q399"),
    "iso3166": IdentifierScheme(
        "ISO 3166-1 alpha-3 code",
        r"[A-Z]{3}",
        "ARM",
        codes=ISO_3166_ALPHA3 | ISO_3166_FORMER_ALPHA3,
    ),
    "cameo": IdentifierScheme("CAMEO actor code", r"(?:[A-Z0-9]{3}){1,5}", "ARMGOV"),
    "viaf": IdentifierScheme("VIAF cluster id", r"[1-9][0-9]{0,21}", "124294977", upper=False),
    "isni": IdentifierScheme("ISNI", r"[0-9]{15}[0-9X]", "0000000121032683"),
}


def normalized_identifier(scheme: str, value: str) -> tuple[str, str]:
    """(scheme, value) in canonical form, or a ValidationError by field
    (`scheme` or `value`) naming what is wrong: an unknown scheme, or a value
    not of the scheme's form."""
    scheme = scheme.strip().lower()
    if scheme not in IDENTIFIER_SCHEMES:
        raise ValidationError(
            {
                "scheme": ValidationError(
                    f"Unknown identifier scheme {scheme!r}; use one of "
                    f"{', '.join(IDENTIFIER_SCHEMES)}.",
                    code="invalid_scheme",
                )
            }
        )
    try:
        return scheme, IDENTIFIER_SCHEMES[scheme].normalized(value)
    except ValidationError as exc:
        raise ValidationError({"value": exc.error_list}) from None


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


def folded(text: str) -> str:
    """`text` without case, diacritics or repeated spaces: how names compare."""
    if text.isascii():  # nothing to decompose: most names, and much faster
        return " ".join(text.casefold().split())
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


# Latin letters with diacritics and their base letters: PostgreSQL's translate()
# folds a column as folded() folds a Python string (without the unaccent
# extension), and the same expression is indexed, so a lookup is an index scan.
_ACCENTED = "àáâãäåāăąçćĉċčďđèéêëēĕėęěĝğġģĥìíîïĩīĭįĵķĺļľłñńņňòóôõöōŏőŕŗřśŝşšţťùúûüũūŭůűųŵýÿŷźżž"
_BASE = "".join(folded(letter) for letter in _ACCENTED)  # one letter each


def folded_sql(column: str) -> Func:
    """folded() of a name column, in SQL: what the folded-name indexes hold."""
    return Func(Lower(F(column)), Value(_ACCENTED), Value(_BASE), function="translate")


def name_indexes(table: str) -> list[models.Index]:
    """A name column's indexes for finding it: exactly (folded) and by prefix."""
    return [
        models.Index(folded_sql("name"), name=f"{table}_folded_name"),
        models.Index(OpClass(Upper("name"), name="text_pattern_ops"), name=f"{table}_name_prefix"),
    ]


class ActorQuerySet(models.QuerySet):
    def with_identifier(self, scheme: str, value: str) -> "ActorQuerySet":
        """The actor identified by (`scheme`, `value`), both in canonical case
        (`normalized_identifier`): at most one, an identifier being unique."""
        return self.filter(
            Exists(ActorIdentifier.objects.filter(actor=OuterRef("pk"), scheme=scheme, value=value))
        )


@track_history("ActorSnapshot")
class Actor(Mergeable, Revisioned):
    """Someone who acts or speaks.

    `id` is the stable public identifier: it comes from an identity column and is
    never reused, even after a deletion. `slug` is a readable handle used by the
    seed annotations.
    """

    slug = models.SlugField(max_length=100, unique=True, validators=[slug_not_digits_validator])
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
        indexes = name_indexes("actors_actor")
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
            models.CheckConstraint(
                condition=~Q(slug__regex=SLUG_DIGITS_ONLY_RE), name="actors_actor_slug_not_digits"
            ),
        ]
        triggers = [Revision(), ChangeLog(resource="actors")]

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
        indexes = name_indexes("actors_alias")
        constraints = [
            models.UniqueConstraint(fields=["actor", "name"], name="actors_alias_unique_per_actor"),
            models.CheckConstraint(condition=~Q(name=""), name="actors_alias_name_not_empty"),
        ]
        triggers = [TouchesParent("actor")]

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
        triggers = [TouchesParent("actor")]

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"

    def clean(self) -> None:
        """The scheme must be one of IDENTIFIER_SCHEMES and the value of its
        form; both are stored in canonical case."""
        self.scheme, self.value = normalized_identifier(self.scheme, self.value)


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
        triggers = [
            Revision(),
            ChangeLog(resource="affiliations"),
            RequiresEvidence(column="affiliation_id"),  # checked at commit
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
