from django.apps import AppConfig


class ActorsConfig(AppConfig):
    """Who acts: actors, their aliases, identifiers and affiliations."""

    name = "actors"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from actors import models, serializers
        from ledger.registry import Child, Resource, register
        from sources.models import Evidence

        register(
            Resource(
                "actors",
                "actor",
                models.Actor,
                serializers.ActorSerializer,
                children=(
                    Child("aliases", models.ActorAlias, "actor_id", lambda a: a.name),
                    Child("identifiers", models.ActorIdentifier, "actor_id", lambda i: i.scheme),
                ),
            )
        )
        register(
            Resource(
                "affiliations",
                "affiliation",
                models.Affiliation,
                serializers.AffiliationSerializer,
                children=(
                    Child(
                        "evidence",
                        Evidence,
                        "affiliation_id",
                        lambda e: (e.source_id, e.start, e.end, e.pk),
                    ),
                ),
                refs={"member": models.Actor, "organization": models.Actor},
            )
        )
