import datetime

import factory

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation
from events.models import Event, EventParticipant, EventType, Place, Statement, StatementKind
from ledger.models import DatePrecision
from sources.models import Evidence, Source

SOURCE_TEXT = (
    "Armenia and Azerbaijan held talks in Brussels. "
    "The foreign ministers agreed to meet again. "
    "Russia criticized the talks."
)


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source

    title = factory.Sequence(lambda n: f"Report {n}")
    publisher = "Example Wire"
    published_on = datetime.date(2023, 11, 9)
    # Distinct texts: the sha256 of a source's text is unique.
    text = factory.Sequence(lambda n: f"{SOURCE_TEXT} (Report {n}.)")


class ActorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Actor

    slug = factory.Sequence(lambda n: f"actor-{n}")
    name = factory.Sequence(lambda n: f"Actor {n}")
    kind = "country"
    country = "ARM"


class ActorAliasFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActorAlias

    actor = factory.SubFactory(ActorFactory)
    name = factory.Sequence(lambda n: f"Alias {n}")


class ActorIdentifierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActorIdentifier

    actor = factory.SubFactory(ActorFactory)
    scheme = "wikidata"
    value = factory.Sequence(lambda n: f"Q{1000 + n}")


class PlaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Place

    slug = factory.Sequence(lambda n: f"place-{n}")
    name = factory.Sequence(lambda n: f"Place {n}")
    kind = "city"
    country = "BEL"


class _CitesEvidence(factory.django.DjangoModelFactory):
    """Records that must cite evidence get one span of a fresh source."""

    class Meta:
        abstract = True
        skip_postgeneration_save = True

    @factory.post_generation
    def evidence(obj, create, extracted, **kwargs):
        if not create:
            return
        source = SourceFactory()
        Evidence.objects.create(
            source=source,
            start=0,
            end=7,
            quote=source.text[0:7],
            **{obj._meta.model_name: obj},
        )


class EventFactory(_CitesEvidence):
    class Meta:
        model = Event

    type = EventType.CONSULT
    title = factory.Sequence(lambda n: f"Talks {n}")
    date_start = datetime.date(2023, 11, 1)
    date_end = datetime.date(2023, 11, 1)
    date_precision = DatePrecision.DAY


class EventParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventParticipant

    event = factory.SubFactory(EventFactory)
    actor = factory.SubFactory(ActorFactory)
    role = "initiator"


class StatementFactory(_CitesEvidence):
    class Meta:
        model = Statement

    speaker = factory.SubFactory(ActorFactory)
    kind = StatementKind.CLAIM
    content = "Said something."
    date_end = datetime.date(2023, 11, 9)
    date_precision = DatePrecision.UNKNOWN


class AffiliationFactory(_CitesEvidence):
    class Meta:
        model = Affiliation

    member = factory.SubFactory(ActorFactory, kind="person")
    organization = factory.SubFactory(ActorFactory)
    role = "Prime Minister"
