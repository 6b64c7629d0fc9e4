"""Indexes for counts by period (events/counts.py): the day and precision of
every event, alone and after its type, so that a time series of all events, or
of one type, is an index-only scan."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0018_merged_into"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["date_sort", "date_precision"], name="events_event_date_prec"
            ),
        ),
        migrations.RemoveIndex(model_name="event", name="events_event_type_date"),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["type", "date_sort", "date_precision"], name="events_event_type_date"
            ),
        ),
    ]
