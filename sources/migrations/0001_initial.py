"""Sources and evidence, moved from the events app with their tables, which
keep their names (events_source, events_evidence and their snapshot tables):
the model state moves, nothing is copied.

The history triggers are named after the app that declares them, so the new
ones are installed on the same tables and the old ones dropped, in this one
transaction: no write goes unrecorded. The content types follow the models,
so permissions, and the groups that hold them, stay as they were."""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

OLD_HISTORY_TRIGGERS = """
DROP TRIGGER IF EXISTS pgtrigger_insert_insert_25d6e ON events_source;
DROP FUNCTION IF EXISTS pgtrigger_insert_insert_25d6e();
DROP TRIGGER IF EXISTS pgtrigger_update_update_f4e93 ON events_source;
DROP FUNCTION IF EXISTS pgtrigger_update_update_f4e93();
DROP TRIGGER IF EXISTS pgtrigger_delete_delete_d3815 ON events_source;
DROP FUNCTION IF EXISTS pgtrigger_delete_delete_d3815();
DROP TRIGGER IF EXISTS pgtrigger_insert_insert_dd684 ON events_evidence;
DROP FUNCTION IF EXISTS pgtrigger_insert_insert_dd684();
DROP TRIGGER IF EXISTS pgtrigger_update_update_89edf ON events_evidence;
DROP FUNCTION IF EXISTS pgtrigger_update_update_89edf();
DROP TRIGGER IF EXISTS pgtrigger_delete_delete_eec2e ON events_evidence;
DROP FUNCTION IF EXISTS pgtrigger_delete_delete_eec2e();
"""

MOVED = ["source", "sourcesnapshot", "evidence", "evidencesnapshot"]


def relabel(source: str, target: str):
    def run(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        for model in MOVED:
            if not ContentType.objects.filter(app_label=target, model=model).exists():
                ContentType.objects.filter(app_label=source, model=model).update(app_label=target)

    return run


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("actors", "0002_history_and_revisions"),
        ("events", "0015_sources_move_to_their_app"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("pghistory", "0007_auto_20250421_0444"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SourceSnapshot",
                    fields=[
                        ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                        ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                        ("pgh_label", models.TextField(help_text="The event label.")),
                        ("id", models.BigIntegerField()),
                        ("revision", models.PositiveIntegerField(default=1, editable=False)),
                        ("title", models.CharField(blank=True, max_length=500)),
                        ("publisher", models.CharField(blank=True, max_length=200)),
                        ("url", models.URLField(blank=True, max_length=2000)),
                        ("published_on", models.DateField(blank=True, null=True)),
                        (
                            "language",
                            models.CharField(
                                default="en", help_text="BCP 47 tag, e.g. en.", max_length=35
                            ),
                        ),
                        ("text", models.TextField()),
                        ("sha256", models.CharField(editable=False, max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "events_sourcesnapshot",
                        "abstract": False,
                    },
                ),
                migrations.CreateModel(
                    name="Evidence",
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
                        (
                            "start",
                            models.PositiveIntegerField(
                                help_text="Offset of the first character (0-based)."
                            ),
                        ),
                        (
                            "end",
                            models.PositiveIntegerField(
                                help_text="Offset just past the last character."
                            ),
                        ),
                        ("quote", models.TextField()),
                        (
                            "search_vector",
                            models.GeneratedField(
                                db_persist=True,
                                expression=django.contrib.postgres.search.SearchVector(
                                    "quote", config="english"
                                ),
                                output_field=django.contrib.postgres.search.SearchVectorField(),
                            ),
                        ),
                        (
                            "affiliation",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="evidence",
                                to="actors.affiliation",
                            ),
                        ),
                        (
                            "event",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="evidence",
                                to="events.event",
                            ),
                        ),
                        (
                            "statement",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="evidence",
                                to="events.statement",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "evidence",
                        "db_table": "events_evidence",
                        "ordering": ["source_id", "start", "end", "id"],
                    },
                ),
                migrations.CreateModel(
                    name="Source",
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
                        ("revision", models.PositiveIntegerField(default=1, editable=False)),
                        ("revised_tx", models.BigIntegerField(default=0, editable=False)),
                        ("title", models.CharField(blank=True, max_length=500)),
                        ("publisher", models.CharField(blank=True, max_length=200)),
                        ("url", models.URLField(blank=True, max_length=2000)),
                        ("published_on", models.DateField(blank=True, null=True)),
                        (
                            "language",
                            models.CharField(
                                default="en", help_text="BCP 47 tag, e.g. en.", max_length=35
                            ),
                        ),
                        ("text", models.TextField()),
                        ("sha256", models.CharField(editable=False, max_length=64, unique=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "events_source",
                        "ordering": ["-published_on", "id"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("text", ""), _negated=True),
                                name="events_source_text_not_empty",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="EvidenceSnapshot",
                    fields=[
                        ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                        ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                        ("pgh_label", models.TextField(help_text="The event label.")),
                        ("id", models.BigIntegerField()),
                        (
                            "start",
                            models.PositiveIntegerField(
                                help_text="Offset of the first character (0-based)."
                            ),
                        ),
                        (
                            "end",
                            models.PositiveIntegerField(
                                help_text="Offset just past the last character."
                            ),
                        ),
                        ("quote", models.TextField()),
                        (
                            "affiliation",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to="actors.affiliation",
                            ),
                        ),
                        (
                            "event",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to="events.event",
                            ),
                        ),
                        (
                            "pgh_context",
                            models.ForeignKey(
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to="pghistory.context",
                            ),
                        ),
                        (
                            "pgh_obj",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="snapshots",
                                to="sources.evidence",
                            ),
                        ),
                        (
                            "statement",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to="events.statement",
                            ),
                        ),
                        (
                            "source",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                related_query_name="+",
                                to="sources.source",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "events_evidencesnapshot",
                        "abstract": False,
                    },
                ),
                migrations.AddField(
                    model_name="evidence",
                    name="source",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="evidence",
                        to="sources.source",
                    ),
                ),
                migrations.AddField(
                    model_name="sourcesnapshot",
                    name="pgh_context",
                    field=models.ForeignKey(
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="pghistory.context",
                    ),
                ),
                migrations.AddField(
                    model_name="sourcesnapshot",
                    name="pgh_obj",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="snapshots",
                        to="sources.source",
                    ),
                ),
                migrations.AddIndex(
                    model_name="evidence",
                    index=django.contrib.postgres.indexes.GinIndex(
                        fields=["search_vector"], name="events_evidence_search_vector"
                    ),
                ),
                migrations.AddIndex(
                    model_name="evidence",
                    index=models.Index(fields=["event"], name="events_evidence_event"),
                ),
                migrations.AddIndex(
                    model_name="evidence",
                    index=models.Index(fields=["statement"], name="events_evidence_statement"),
                ),
                migrations.AddIndex(
                    model_name="evidence",
                    index=models.Index(fields=["affiliation"], name="events_evidence_affiliation"),
                ),
                migrations.AddConstraint(
                    model_name="evidence",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("start__lt", models.F("end"))),
                        name="events_evidence_span",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="evidence",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                ("affiliation__isnull", True),
                                ("event__isnull", False),
                                ("statement__isnull", True),
                            ),
                            models.Q(
                                ("affiliation__isnull", True),
                                ("event__isnull", True),
                                ("statement__isnull", False),
                            ),
                            models.Q(
                                ("affiliation__isnull", False),
                                ("event__isnull", True),
                                ("statement__isnull", True),
                            ),
                            _connector="OR",
                        ),
                        name="events_evidence_one_record",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="evidence",
                    constraint=models.UniqueConstraint(
                        fields=("source", "start", "end", "event", "statement", "affiliation"),
                        name="events_evidence_unique_per_record",
                        nulls_distinct=False,
                    ),
                ),
            ]
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="source",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "events_sourcesnapshot" ("created_at", "id", "language", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_on", "publisher", "revision", "sha256", "text", "title", "updated_at", "url") VALUES (NEW."created_at", NEW."id", NEW."language", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."published_on", NEW."publisher", NEW."revision", NEW."sha256", NEW."text", NEW."title", NEW."updated_at", NEW."url"); RETURN NULL;',
                    hash="ae4edb1f5fed52a926a04298224d43217701c855",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_c3ed3",
                    table="events_source",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="source",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."created_at" IS DISTINCT FROM (NEW."created_at") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."language" IS DISTINCT FROM (NEW."language") OR OLD."published_on" IS DISTINCT FROM (NEW."published_on") OR OLD."publisher" IS DISTINCT FROM (NEW."publisher") OR OLD."revision" IS DISTINCT FROM (NEW."revision") OR OLD."sha256" IS DISTINCT FROM (NEW."sha256") OR OLD."text" IS DISTINCT FROM (NEW."text") OR OLD."title" IS DISTINCT FROM (NEW."title") OR OLD."updated_at" IS DISTINCT FROM (NEW."updated_at") OR OLD."url" IS DISTINCT FROM (NEW."url"))',
                    func='INSERT INTO "events_sourcesnapshot" ("created_at", "id", "language", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_on", "publisher", "revision", "sha256", "text", "title", "updated_at", "url") VALUES (NEW."created_at", NEW."id", NEW."language", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."published_on", NEW."publisher", NEW."revision", NEW."sha256", NEW."text", NEW."title", NEW."updated_at", NEW."url"); RETURN NULL;',
                    hash="8153dd4e784a447d442d863c393222d00a970fe8",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_e6185",
                    table="events_source",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="source",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "events_sourcesnapshot" ("created_at", "id", "language", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "published_on", "publisher", "revision", "sha256", "text", "title", "updated_at", "url") VALUES (OLD."created_at", OLD."id", OLD."language", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."published_on", OLD."publisher", OLD."revision", OLD."sha256", OLD."text", OLD."title", OLD."updated_at", OLD."url"); RETURN NULL;',
                    hash="f1f540426a0c4098bdb45120c70469e2e6de4489",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_fde77",
                    table="events_source",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="evidence",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "events_evidencesnapshot" ("affiliation_id", "end", "event_id", "id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "quote", "source_id", "start", "statement_id") VALUES (NEW."affiliation_id", NEW."end", NEW."event_id", NEW."id", _pgh_attach_context(), NOW(), \'insert\', NEW."id", NEW."quote", NEW."source_id", NEW."start", NEW."statement_id"); RETURN NULL;',
                    hash="6623c4587b1111d413262b2dbfb6ef960ee05bed",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_fa21e",
                    table="events_evidence",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="evidence",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition='WHEN (OLD."affiliation_id" IS DISTINCT FROM (NEW."affiliation_id") OR OLD."end" IS DISTINCT FROM (NEW."end") OR OLD."event_id" IS DISTINCT FROM (NEW."event_id") OR OLD."id" IS DISTINCT FROM (NEW."id") OR OLD."quote" IS DISTINCT FROM (NEW."quote") OR OLD."source_id" IS DISTINCT FROM (NEW."source_id") OR OLD."start" IS DISTINCT FROM (NEW."start") OR OLD."statement_id" IS DISTINCT FROM (NEW."statement_id"))',
                    func='INSERT INTO "events_evidencesnapshot" ("affiliation_id", "end", "event_id", "id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "quote", "source_id", "start", "statement_id") VALUES (NEW."affiliation_id", NEW."end", NEW."event_id", NEW."id", _pgh_attach_context(), NOW(), \'update\', NEW."id", NEW."quote", NEW."source_id", NEW."start", NEW."statement_id"); RETURN NULL;',
                    hash="e9d09f71370e50ac19d532fe4cdae822e4976cb7",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_fcaa4",
                    table="events_evidence",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="evidence",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "events_evidencesnapshot" ("affiliation_id", "end", "event_id", "id", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "quote", "source_id", "start", "statement_id") VALUES (OLD."affiliation_id", OLD."end", OLD."event_id", OLD."id", _pgh_attach_context(), NOW(), \'delete\', OLD."id", OLD."quote", OLD."source_id", OLD."start", OLD."statement_id"); RETURN NULL;',
                    hash="06eb2e303b693766278591fda6428e9c913267ce",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_a5deb",
                    table="events_evidence",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RunSQL(OLD_HISTORY_TRIGGERS, reverse_sql=None),
        migrations.RunPython(relabel("events", "sources"), relabel("sources", "events")),
    ]
