from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What happened and what was said: events and statements, who took part,
    and the places they happened."""

    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from actors.models import Actor
        from events import models, serializers
        from ledger.registry import Child, Resource, register
        from sources.models import Evidence

        def cited(fk: str) -> Child:
            return Child("evidence", Evidence, fk, lambda e: (e.source_id, e.start, e.end, e.pk))

        register(Resource("places", "place", models.Place, serializers.PlaceSerializer))
        register(
            Resource(
                "events",
                "event",
                models.Event,
                serializers.EventSerializer,
                children=(
                    Child(
                        "participants",
                        models.EventParticipant,
                        "event_id",
                        lambda p: p.pk,
                        refs={"actor": Actor},
                    ),
                    cited("event_id"),
                ),
                refs={"place": models.Place},
                derived=(models.PloverRecord, models.PloverStale),
            )
        )
        register(
            Resource(
                "statements",
                "statement",
                models.Statement,
                serializers.StatementSerializer,
                children=(
                    Child(
                        "actor_links",
                        models.StatementActor,
                        "statement_id",
                        lambda link: link.pk,
                        refs={"actor": Actor},
                    ),
                    Child(
                        "about_events",
                        models.StatementEvent,
                        "statement_id",
                        lambda link: link.event_id,
                        through="event",
                    ),
                    cited("statement_id"),
                ),
                refs={"speaker": Actor},
            )
        )
