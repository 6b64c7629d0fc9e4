"""The "curator" group edits the data (actors, events and their neighbours) but
not users or tokens; the "viewer" group reads it. Give a person staff status
and one of these groups to let them into the admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

DATA_APPS = ["actors", "events"]


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; these need them now.
    for label in DATA_APPS:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    data = Permission.objects.filter(content_type__app_label__in=DATA_APPS)
    curator, _ = Group.objects.get_or_create(name="curator")
    # Snapshots and the change log are written by the database only.
    editable = data.exclude(content_type__model__endswith="snapshot").exclude(
        content_type__model="change"
    )
    curator.permissions.set(editable | data.filter(codename__startswith="view_"))
    viewer, _ = Group.objects.get_or_create(name="viewer")
    viewer.permissions.set(data.filter(codename__startswith="view_"))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["curator", "viewer"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0007_change_feed"),
        ("actors", "0002_history_and_revisions"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
