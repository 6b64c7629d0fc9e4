from django.apps import AppConfig


class EventsConfig(AppConfig):
    """What happened and what was said: events, statements, and the sources,
    evidence spans and places they rest on."""

    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from events.database_role import ensure_app_role

        post_migrate.connect(ensure_app_role, sender=self, dispatch_uid="ledger-app-role")
