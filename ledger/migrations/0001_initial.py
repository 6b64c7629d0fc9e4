"""The change feed and idempotency keys, moved from the events app: the model
state only; their tables (events_change, events_idempotencykey) stay as they are."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    # The tables were created by the events app (0007 and 0009); this state
    # takes them over, and nothing runs on the database.
    dependencies = [("events", "0013_statement_event_names")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Change",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("resource", models.CharField(max_length=20)),
                        ("object_id", models.BigIntegerField()),
                        (
                            "action",
                            models.CharField(
                                choices=[
                                    ("create", "Created"),
                                    ("update", "Updated"),
                                    ("delete", "Deleted"),
                                ],
                                max_length=10,
                            ),
                        ),
                        ("revision", models.PositiveIntegerField()),
                        ("txid", models.BigIntegerField()),
                        ("commit_seq", models.BigIntegerField(editable=False, null=True)),
                        ("changed_at", models.DateTimeField()),
                    ],
                    options={
                        "db_table": "events_change",
                        "ordering": ["commit_seq", "id"],
                        "indexes": [
                            models.Index(
                                fields=["commit_seq", "id"], name="events_change_commit_order"
                            ),
                            models.Index(
                                fields=["resource", "commit_seq", "id"],
                                name="events_change_resource_order",
                            ),
                            models.Index(fields=["txid"], name="events_change_tx"),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="IdempotencyKey",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("user_id", models.BigIntegerField()),
                        ("key", models.CharField(max_length=200)),
                        ("path", models.CharField(max_length=500)),
                        ("request_hash", models.CharField(max_length=64)),
                        ("state", models.CharField(default="in_progress", max_length=20)),
                        ("response_status", models.PositiveSmallIntegerField(null=True)),
                        ("response_body", models.TextField(blank=True)),
                        ("response_content_type", models.CharField(blank=True, max_length=100)),
                        ("response_headers", models.JSONField(default=dict)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("expires_at", models.DateTimeField()),
                    ],
                    options={
                        "db_table": "events_idempotencykey",
                        "indexes": [
                            models.Index(fields=["expires_at"], name="events_idempotency_expiry")
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("user_id", "key"), name="events_idempotency_key_unique"
                            )
                        ],
                    },
                ),
            ]
        )
    ]
