"""Synthetic data through the bulk loader: what is stored, its history, its
change-feed entries, and the checks that refuse a bad batch."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count

from actors.models import Actor
from events.models import Event, EventParticipant, Statement
from events.synthetic import TABLES, SyntheticData
from ledger.bulk import BulkLoader, BulkLoadError
from ledger.models import Change
from sources.models import Evidence, Source

pytestmark = pytest.mark.django_db


def generate(*args: str) -> str:
    out = io.StringIO()
    call_command("generate_synthetic", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def synthetic(db):
    generate("--events", "300", "--batch-size", "100")


def test_sizes_and_shapes(synthetic):
    assert Event.objects.count() == 300
    assert Actor.objects.count() == 3 * 40  # every batch tops up at least the 40 countries
    assert Source.objects.count() == 30  # a report per 10 events
    assert Statement.objects.count() == 60  # two per report
    per_event = EventParticipant.objects.values("event").annotate(n=Count("id"))
    assert {row["n"] for row in per_event} <= {2, 3, 4}
    assert len(per_event) == 300
    assert Evidence.objects.filter(event__isnull=False).count() == 300
    assert Evidence.objects.filter(statement__isnull=False).count() == 60


def test_every_event_gets_its_stored_plover_record(synthetic):
    """The loader writes no marks; the command stores every record after it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE b.record IS DISTINCT FROM r.record) "
            "FROM el_plover_records(ARRAY(SELECT id FROM events_event)) b "
            "FULL JOIN events_ploverrecord r ON r.event_id = b.event_id"
        )
        assert cursor.fetchone() == (300, 0)
        cursor.execute("SELECT count(*) FROM events_ploverstale")
        assert cursor.fetchone() == (0,)


def test_every_quote_is_the_source_text_at_its_offsets(synthetic):
    for evidence in Evidence.objects.select_related("source"):
        assert evidence.source.text[evidence.start : evidence.end] == evidence.quote
    for source in Source.objects.all():
        assert source.sha256 == Source.digest(source.text)


def test_history_records_one_import_per_batch(api, synthetic):
    event = Event.objects.order_by("id").last()
    assert event.revision == 1
    entries = api.get(f"/api/v1/events/{event.pk}/history/").json()["results"]
    assert len(entries) == 1
    assert entries[0]["action"] == "create" and entries[0]["via"] == "import"
    snapshot = event.snapshots.get()
    assert snapshot.pgh_context.metadata["batch"] == 3
    assert snapshot.pgh_context.metadata["command"] == "generate_synthetic"
    # Child rows have their snapshots in the same context.
    participants = EventParticipant.objects.filter(event=event).count()
    snapshots = event.participants.model.snapshots.rel.related_model.objects
    assert snapshots.filter(event_id=event.pk, pgh_context=snapshot.pgh_context).count() == (
        participants
    )
    # Revision 1 is readable as it was.
    old = api.get(f"/api/v1/events/{event.pk}/history/1/").json()
    assert old == api.get(f"/api/v1/events/{event.pk}/").json()


def test_change_feed_lists_every_created_resource(synthetic):
    created = Change.objects.filter(action="create")
    assert created.filter(resource="events").count() == 300
    assert created.filter(resource="statements").count() == 60
    assert created.filter(resource="sources").count() == 30


@pytest.mark.django_db(transaction=True)  # a revision per committed transaction
def test_later_writes_keep_counting_revisions(token_client):
    generate("--events", "20", "--batch-size", "10")
    client = token_client("change_event", if_match='"1"')
    event = Event.objects.order_by("id").first()
    response = client.patch(f"/api/v1/events/{event.pk}/", {"summary": "Edited."}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["revision"] == 2
    assert event.snapshots.count() == 2


def test_same_seed_same_data(db):
    first = SyntheticData(seed=5).batch(40)
    second = SyntheticData(seed=5).batch(40)
    titles = [row[5] for row in first.rows["events_event"]]
    assert titles == [row[5] for row in second.rows["events_event"]]
    other = SyntheticData(seed=6).batch(40)
    assert titles != [row[5] for row in other.rows["events_event"]]


def test_reuse_skips_a_database_that_is_big_enough(synthetic):
    assert "nothing to do" in generate("--events", "300", "--reuse")
    assert Event.objects.count() == 300
    generate("--events", "10", "--reuse", "--batch-size", "10")  # 10 < 300: nothing either
    assert Event.objects.count() == 300


def test_a_batch_with_a_wrong_quote_writes_nothing(db):
    batch = SyntheticData(seed=1).batch(20)
    source_id, start, end, quote, event_id, _ = batch.rows["events_evidence"][0]
    batch.rows["events_evidence"][0] = (source_id, start, end, "x" + quote[1:], event_id, None)
    loader = BulkLoader(TABLES, metadata={"command": "test"})
    with pytest.raises(BulkLoadError, match="not the source's text"):
        loader.load(batch.rows)
    assert Event.objects.count() == 0 and Actor.objects.count() == 0


def test_a_batch_with_an_uncited_event_writes_nothing(db):
    batch = SyntheticData(seed=1).batch(20)
    event_id = batch.rows["events_event"][0][0]
    batch.rows["events_evidence"] = [
        row for row in batch.rows["events_evidence"] if row[4] != event_id
    ]
    with pytest.raises(BulkLoadError, match="cites no evidence"):
        BulkLoader(TABLES, metadata={}).load(batch.rows)
    assert Event.objects.count() == 0


def test_bad_arguments_are_refused(db):
    with pytest.raises(CommandError, match="at least 1"):
        generate("--events", "0")
