from django.apps import AppConfig


class SourcesConfig(AppConfig):
    """Sources: the documents facts come from, with their full text, and the
    evidence spans that cite their exact words."""

    name = "sources"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ledger.registry import Resource, register
        from sources import models, serializers

        register(Resource("sources", "source", models.Source, serializers.SourceSerializer))
