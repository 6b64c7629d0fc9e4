from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What happened and what was said: events, statements, and the sources,
    evidence spans and places they rest on."""

    name = "events"
    default_auto_field = "django.db.models.BigAutoField"
