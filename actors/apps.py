from django.apps import AppConfig


class ActorsConfig(AppConfig):
    """Who acts: actors, their aliases, identifiers and affiliations."""

    name = "actors"
    default_auto_field = "django.db.models.BigAutoField"
