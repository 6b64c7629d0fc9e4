import datetime

import pytest
from django.core.exceptions import ValidationError

from actors.services import actor_create, affiliation_create
from events.models import Event, Statement
from events.services import event_create, statement_create
from sources.models import Evidence
from sources.services import locate_quote, span_for_quote
from tests.factories import ActorFactory, SourceFactory

TEXT = "Russia met Armenia. Later Russia met Azerbaijan."


class TestLocateQuote:
    def test_a_unique_quote_gives_its_offsets(self):
        assert locate_quote(text=TEXT, quote="Armenia") == (11, 18)

    def test_a_missing_quote_is_refused(self):
        with pytest.raises(ValidationError, match="“Ukraine” is not in the source text"):
            locate_quote(text=TEXT, quote="Ukraine")

    def test_an_ambiguous_quote_is_refused(self):
        with pytest.raises(ValidationError, match="ambiguous: it occurs 2 times"):
            locate_quote(text=TEXT, quote="Russia met")

    def test_an_occurrence_picks_one_match(self):
        start, end = locate_quote(text=TEXT, quote="Russia met", occurrence=2)
        assert (start, end) == (26, 36)
        assert TEXT[start:end] == "Russia met"

    def test_a_missing_occurrence_is_refused(self):
        with pytest.raises(ValidationError, match="occurrence 3 does not exist"):
            locate_quote(text=TEXT, quote="Russia met", occurrence=3)

    def test_an_empty_quote_is_refused(self):
        with pytest.raises(ValidationError, match="empty"):
            locate_quote(text=TEXT, quote="")


@pytest.mark.django_db
class TestWrites:
    def test_event_create_stores_participants_and_evidence(self, immediate_constraints):
        source = SourceFactory(text=TEXT)
        russia, armenia = ActorFactory(name="Russia"), ActorFactory(name="Armenia")
        event = event_create(
            type="CONSULT",
            title="Russia meets Armenia",
            date_end=datetime.date(2023, 11, 9),
            date_precision="unknown",
            context=["diplomatic"],
            participants=[(russia, "initiator"), (armenia, "target")],
            evidence=[span_for_quote(source=source, quote="Russia met Armenia")],
        )
        immediate_constraints()
        stored = Event.objects.get(pk=event.pk)
        assert [(p.actor.name, p.role) for p in stored.participants.all()] == [
            ("Russia", "initiator"),
            ("Armenia", "target"),
        ]
        assert list(stored.evidence.values_list("start", "end", "quote")) == [
            (0, 18, "Russia met Armenia")
        ]

    def test_event_create_without_evidence_writes_nothing(self):
        with pytest.raises(ValidationError, match="At least one evidence span"):
            event_create(
                type="CONSULT",
                title="x",
                date_end=datetime.date(2023, 1, 1),
                participants=[],
                evidence=[],
            )
        assert Event.objects.count() == 0

    def test_event_create_validates_fields_before_writing(self):
        source = SourceFactory(text=TEXT)
        with pytest.raises(ValidationError) as raised:
            event_create(
                type="FIGHT",
                title="x",
                date_end=datetime.date(2023, 1, 1),
                participants=[],
                evidence=[span_for_quote(source=source, quote="Armenia")],
            )
        assert "type" in raised.value.message_dict
        assert Event.objects.count() == 0 and Evidence.objects.count() == 0

    def test_a_statement_quote_must_lie_inside_a_cited_span(self):
        source = SourceFactory(text=TEXT)
        speaker = ActorFactory()
        span = span_for_quote(source=source, quote="Russia met Armenia")
        with pytest.raises(ValidationError, match="not inside any cited span"):
            statement_create(
                speaker=speaker,
                kind="claim",
                content="x",
                quote="Azerbaijan",
                date_end=datetime.date(2023, 1, 1),
                evidence=[span],
            )
        statement = statement_create(
            speaker=speaker,
            kind="claim",
            content="x",
            quote="met",
            date_end=datetime.date(2023, 1, 1),
            evidence=[span],
        )
        assert Statement.objects.get(pk=statement.pk).quote == "met"

    def test_actor_create_with_aliases_and_identifiers(self):
        actor = actor_create(
            slug="russia",
            name="Russia",
            kind="country",
            country="RUS",
            aliases=["Moscow"],
            identifiers={"wikidata": "Q159"},
        )
        assert [a.name for a in actor.aliases.all()] == ["Moscow"]
        assert [str(i) for i in actor.identifiers.all()] == ["wikidata:Q159"]

    def test_actor_create_refuses_a_bad_country_and_writes_nothing(self):
        with pytest.raises(ValidationError, match="alpha-3"):
            actor_create(slug="x", name="X", kind="country", country="Armenia")
        assert not ActorFactory._meta.model.objects.filter(slug="x").exists()

    def test_affiliation_create_cites_evidence(self, immediate_constraints):
        source = SourceFactory(text=TEXT)
        member, organization = ActorFactory(kind="person"), ActorFactory()
        affiliation = affiliation_create(
            member=member,
            organization=organization,
            role="Envoy",
            evidence=[span_for_quote(source=source, quote="Armenia")],
        )
        immediate_constraints()
        assert affiliation.evidence.get().quote == "Armenia"
