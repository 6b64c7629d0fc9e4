from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand

from ledger import registry
from ledger.history import snapshot_model


class Command(BaseCommand):
    help = (
        'Create or refresh the "curator" group (edits the registered resources and their '
        'child rows, and reads their history; not users or tokens) and the "viewer" group '
        "(reads them). Safe to run again; the migrations run it once."
    )

    def handle(self, *args, **options):
        models = registry.data_models()
        data = Permission.objects.filter(content_type__in=self.content_types(models))
        # Snapshots are written by the database only: readable, never editable.
        snapshots = Permission.objects.filter(
            content_type__in=self.content_types([snapshot_model(m) for m in models]),
            codename__startswith="view_",
        )
        curator, _ = Group.objects.get_or_create(name="curator")
        curator.permissions.set(data | snapshots)
        viewer, _ = Group.objects.get_or_create(name="viewer")
        viewer.permissions.set(data.filter(codename__startswith="view_") | snapshots)
        self.stdout.write(
            f"curator: {curator.permissions.count()} permissions; "
            f"viewer: {viewer.permissions.count()} permissions."
        )

    @staticmethod
    def content_types(models) -> list[ContentType]:
        return list(ContentType.objects.get_for_models(*models).values())
