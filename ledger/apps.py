from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The versioned-resource platform: revisions, history, the change feed and
    the API conventions every resource shares. It knows no domain model: the
    apps register their resources (`ledger.registry`) when they are ready."""

    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from ledger.database_role import ensure_app_role

        post_migrate.connect(ensure_app_role, sender=self, dispatch_uid="ledger-app-role")
