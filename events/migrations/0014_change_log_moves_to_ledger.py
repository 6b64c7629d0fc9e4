"""Change and IdempotencyKey now belong to the ledger app (ledger/migrations/0001):
the model state moves, the tables stay. Their content types follow them, so
their permissions keep their ids, and the curator and viewer groups lose the
permissions of these two tables: the service alone writes them."""

from django.db import migrations

MOVED = ["change", "idempotencykey"]


def relabel(apps, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=target, model=model).exists():
            ContentType.objects.filter(app_label=source, model=model).update(app_label=target)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    moved = Permission.objects.filter(content_type__model__in=MOVED)
    for group in Group.objects.filter(name__in=["curator", "viewer"]):
        group.permissions.remove(*moved)


def forwards(apps, schema_editor):
    relabel(apps, "events", "ledger")


def backwards(apps, schema_editor):
    relabel(apps, "ledger", "events")


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0013_statement_event_names"),
        ("ledger", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Change"),
                migrations.DeleteModel(name="IdempotencyKey"),
            ]
        ),
        migrations.RunPython(forwards, backwards),
    ]
