from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand

DATA_APPS = ["actors", "events"]


class Command(BaseCommand):
    help = (
        'Create or refresh the "curator" group (edits actors, events and their neighbours; '
        'not users or tokens) and the "viewer" group (reads them). Safe to run again; '
        "the migrations run it once."
    )

    def handle(self, *args, **options):
        data = Permission.objects.filter(content_type__app_label__in=DATA_APPS)
        # Snapshots and the change log are written by the database only.
        editable = data.exclude(content_type__model__endswith="snapshot").exclude(
            content_type__model="change"
        )
        curator, _ = Group.objects.get_or_create(name="curator")
        curator.permissions.set(editable | data.filter(codename__startswith="view_"))
        viewer, _ = Group.objects.get_or_create(name="viewer")
        viewer.permissions.set(data.filter(codename__startswith="view_"))
        self.stdout.write(
            f"curator: {curator.permissions.count()} permissions; "
            f"viewer: {viewer.permissions.count()} permissions."
        )
