import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from actors.models import Actor
from tests.factories import (
    ActorAliasFactory,
    ActorFactory,
    ActorIdentifierFactory,
    AffiliationFactory,
)

pytestmark = pytest.mark.django_db


def refused(check: str):
    return pytest.raises(IntegrityError, match=check)


def test_one_identifier_value_per_scheme_per_actor():
    identifier = ActorIdentifierFactory(scheme="wikidata", value="Q399")
    with refused("actors_identifier_one_per_scheme"), transaction.atomic():
        ActorIdentifierFactory(actor=identifier.actor, scheme="wikidata", value="Q1")
    ActorIdentifierFactory(actor=identifier.actor, scheme="iso3166", value="ARM")
    assert identifier.actor.identifiers.count() == 2


def test_an_identifier_points_at_one_actor():
    ActorIdentifierFactory(scheme="wikidata", value="Q399")
    with refused("actors_identifier_value_unique"), transaction.atomic():
        ActorIdentifierFactory(scheme="wikidata", value="Q399")


def test_actors_are_found_by_identifier():
    identifier = ActorIdentifierFactory(scheme="wikidata", value="Q159")
    ActorIdentifierFactory(scheme="wikidata", value="Q227")
    assert list(Actor.objects.with_identifier("wikidata", "Q159")) == [identifier.actor]


def test_identifier_scheme_is_a_lowercase_slug():
    with refused("actors_identifier_scheme_format"), transaction.atomic():
        ActorIdentifierFactory(scheme="Wiki Data")


def test_country_must_be_three_capital_letters():
    with refused("actors_actor_country_alpha3"), transaction.atomic():
        ActorFactory(country="am")
    with pytest.raises(ValidationError, match="alpha-3"):
        ActorFactory.build(country="AM").full_clean()
    assert ActorFactory(country="IGO").country == "IGO"


def test_unknown_kind_and_sector_are_refused():
    with refused("actors_actor_kind_valid"), transaction.atomic():
        ActorFactory(kind="alien")
    with refused("actors_actor_sector_valid"), transaction.atomic():
        ActorFactory(sector="XXX")


def test_slugs_are_unique():
    ActorFactory(slug="armenia")
    with refused("slug"), transaction.atomic():
        ActorFactory(slug="armenia")


def test_an_alias_is_listed_once_per_actor():
    alias = ActorAliasFactory(name="Moscow")
    with refused("actors_alias_unique_per_actor"), transaction.atomic():
        ActorAliasFactory(actor=alias.actor, name="Moscow")
    ActorAliasFactory(name="Moscow")  # another actor may share the name


def test_ids_are_never_reused_after_deletion():
    first = ActorFactory()
    first_id = first.pk
    first.delete()
    assert ActorFactory().pk > first_id


class TestAffiliation:
    def test_nobody_is_affiliated_with_themselves(self):
        actor = ActorFactory()
        with refused("actors_affiliation_not_self"), transaction.atomic():
            AffiliationFactory(member=actor, organization=actor)

    def test_start_must_not_follow_end(self):
        with refused("actors_affiliation_date_order"), transaction.atomic():
            AffiliationFactory(
                start_date=datetime.date(2024, 1, 1), end_date=datetime.date(2023, 1, 1)
            )

    def test_the_same_role_from_the_same_start_is_recorded_once(self):
        affiliation = AffiliationFactory()
        with refused("actors_affiliation_unique"), transaction.atomic():
            AffiliationFactory(
                member=affiliation.member,
                organization=affiliation.organization,
                role=affiliation.role,
            )

    def test_an_affiliation_without_evidence_is_refused_at_commit(self, immediate_constraints):
        member, organization = ActorFactory(kind="person"), ActorFactory()
        with refused("actors_affiliation .* cites no evidence"), transaction.atomic():
            member.affiliations.create(organization=organization, role="Minister")
            immediate_constraints()
