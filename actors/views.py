"""API views of actors and affiliations."""

from drf_spectacular.utils import extend_schema_view

from actors.filters import ActorFilterSet, AffiliationFilterSet
from actors.models import Actor, Affiliation
from actors.serializers import (
    ActorSerializer,
    ActorWriteSerializer,
    AffiliationSerializer,
    AffiliationWriteSerializer,
)
from actors.services import (
    actor_create,
    actor_delete,
    actor_merge,
    actor_unmerge,
    actor_update,
    affiliation_create,
    affiliation_delete,
    affiliation_update,
)
from ledger.api.merges import MergeableViewSet, merge_docs
from ledger.api.viewsets import ID_ORDERINGS, NAME_ORDERINGS, RevisionedViewSet, crud_docs


@extend_schema_view(
    **crud_docs(
        "actor",
        "actors",
        "Someone who acts or speaks: a state, person, government body, armed force, "
        "organisation or group, with aliases and identifiers in other systems "
        "(wikidata:Q399). Its events and statements are linked from it.",
        ActorSerializer,
        ActorWriteSerializer,
    ),
    **merge_docs(
        "actor",
        "actors",
        "the actor's participations, statements, statement links, affiliations, aliases "
        "and identifiers (and its name, as an alias)",
    ),
)
class ActorViewSet(MergeableViewSet):
    queryset = ActorSerializer.eager(Actor.objects.all())
    serializer_class = ActorSerializer
    write_serializer_class = ActorWriteSerializer
    filterset_class = ActorFilterSet
    orderings = NAME_ORDERINGS
    default_ordering = "name"

    def perform_service_create(self, data):
        identifiers = {i["scheme"]: i["value"] for i in data.pop("identifiers", [])}
        return actor_create(identifiers=identifiers, aliases=data.pop("aliases", []), **data)

    def perform_service_update(self, instance, data, partial):
        aliases = data.pop("aliases", None if partial else [])
        identifiers = data.pop("identifiers", None if partial else [])
        return actor_update(
            actor=instance,
            fields=data,
            aliases=aliases,
            identifiers=None
            if identifiers is None
            else {i["scheme"]: i["value"] for i in identifiers},
        )

    def perform_service_delete(self, instance):
        actor_delete(actor=instance)

    def perform_service_merge(self, record, into):
        return actor_merge(actor=record, into=into)

    def perform_service_unmerge(self, record):
        return actor_unmerge(actor=record)


@extend_schema_view(
    **crud_docs(
        "affiliation",
        "affiliations",
        "A person or body holding a role in an organisation (the Prime Minister of "
        "Armenia), with start and end dates at their precision and the evidence.",
        AffiliationSerializer,
        AffiliationWriteSerializer,
    )
)
class AffiliationViewSet(RevisionedViewSet):
    queryset = AffiliationSerializer.eager(Affiliation.objects.all())
    serializer_class = AffiliationSerializer
    write_serializer_class = AffiliationWriteSerializer
    filterset_class = AffiliationFilterSet
    orderings = ID_ORDERINGS
    default_ordering = "id"

    def perform_service_create(self, data):
        return affiliation_create(**data)

    def perform_service_update(self, instance, data, partial):
        return affiliation_update(
            affiliation=instance, evidence=data.pop("evidence", None), fields=data
        )

    def perform_service_delete(self, instance):
        affiliation_delete(affiliation=instance)
