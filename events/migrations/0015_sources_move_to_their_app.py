"""Source and Evidence (with their snapshots) now belong to the sources app
(sources/migrations/0001): the model state moves, the tables stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0014_change_log_moves_to_ledger"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="evidencesnapshot",
                    name="pgh_obj",
                ),
                migrations.RemoveField(
                    model_name="evidencesnapshot",
                    name="affiliation",
                ),
                migrations.RemoveField(
                    model_name="evidencesnapshot",
                    name="event",
                ),
                migrations.RemoveField(
                    model_name="evidencesnapshot",
                    name="pgh_context",
                ),
                migrations.RemoveField(
                    model_name="evidencesnapshot",
                    name="source",
                ),
                migrations.RemoveField(
                    model_name="evidencesnapshot",
                    name="statement",
                ),
                migrations.RemoveField(
                    model_name="sourcesnapshot",
                    name="pgh_obj",
                ),
                migrations.RemoveField(
                    model_name="sourcesnapshot",
                    name="pgh_context",
                ),
                migrations.DeleteModel(
                    name="Evidence",
                ),
                migrations.DeleteModel(
                    name="EvidenceSnapshot",
                ),
                migrations.DeleteModel(
                    name="Source",
                ),
                migrations.DeleteModel(
                    name="SourceSnapshot",
                ),
            ]
        )
    ]
