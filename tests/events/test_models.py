import datetime

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction

from events.models import Event, EventStatus
from events.services import event_update
from ledger.models import DatePrecision, format_interval
from sources.models import Evidence, Source
from tests.factories import (
    ActorFactory,
    EventFactory,
    EventParticipantFactory,
    SourceFactory,
    StatementFactory,
)

pytestmark = pytest.mark.django_db

D = datetime.date


def refused(check: str):
    """Expect the database to refuse a write, naming the constraint or trigger."""
    return pytest.raises(IntegrityError, match=check)


class TestConstraintValidation:
    """full_clean checks every check constraint of a record in one query."""

    def test_each_broken_constraint_is_reported_with_its_message(self, django_assert_num_queries):
        event = EventFactory()
        event.date_precision = DatePrecision.YEAR
        event.date_start, event.date_end = D(2023, 11, 2), D(2023, 11, 1)
        with pytest.raises(ValidationError) as refused, django_assert_num_queries(3):
            # the savepoint, one SELECT of every check, its release
            event.full_clean(exclude=["place"], validate_unique=False)
        assert sorted(refused.value.message_dict[NON_FIELD_ERRORS]) == [
            "With month or year precision, date_start must be the first day of the period.",
            "With year precision, date_start must be 1 January and date_end 31 December.",
            "date_start must not be after date_end.",
        ]

    def test_the_query_built_once_answers_for_each_records_values(self):
        # Built for the first event, kept for the others (values as its
        # parameters); an empty value, which Django's SQL depends on, makes
        # a query of its own.
        year = {"type": "CONSULT", "title": "Talks", "date_precision": DatePrecision.YEAR}
        whole = Event(**year, date_start=D(2023, 1, 1), date_end=D(2023, 12, 31))
        broken = Event(**year, date_start=D(2023, 3, 1), date_end=D(2023, 12, 31))
        open_ended = Event(**year, date_start=D(2023, 3, 1), date_end=None)
        after = Event(**year, date_start=D(2023, 1, 1), date_end=None)
        message = "With year precision, date_start must be 1 January and date_end 31 December."
        for event, refused in ((whole, False), (broken, True), (open_ended, True), (after, False)):
            try:
                event.full_clean(exclude=["place"], validate_unique=False)
            except ValidationError as error:
                assert refused and message in error.message_dict[NON_FIELD_ERRORS]
            else:
                assert not refused

    def test_a_change_is_checked_against_every_constraint_over_its_fields(self):
        # Only the precision changes; the year constraints also read the dates.
        event = EventFactory(date_start=D(2023, 11, 1), date_end=D(2023, 11, 1))
        with pytest.raises(ValidationError) as refused:
            event_update(event=event, fields={"date_precision": DatePrecision.YEAR})
        assert "With year precision" in " ".join(refused.value.message_dict[NON_FIELD_ERRORS])
        event.refresh_from_db()
        assert event.date_precision == DatePrecision.DAY

    def test_a_valid_record_passes(self):
        event = EventFactory()
        event.summary = "Changed."
        event.full_clean()

    def test_a_check_over_an_excluded_field_is_skipped(self):
        event = EventFactory()
        event.date_start, event.date_end = D(2023, 11, 2), D(2023, 11, 1)
        event.full_clean(exclude=["date_start"])  # as Django skips it


class TestDateConstraints:
    def test_start_after_end_is_refused(self):
        with refused("date_order"), transaction.atomic():
            EventFactory(date_start=D(2023, 11, 2), date_end=D(2023, 11, 1))

    def test_an_interval_needs_at_least_one_bound(self):
        with refused("date_bounded"), transaction.atomic():
            EventFactory(date_start=None, date_end=None, date_precision="unknown")

    def test_open_start_is_allowed(self):
        event = EventFactory(date_start=None, date_end=D(2023, 11, 9), date_precision="unknown")
        assert Event.objects.get(pk=event.pk).date_display == "before 9 Nov 2023"

    def test_year_precision_needs_whole_years(self):
        with refused("year_whole"), transaction.atomic():
            EventFactory(date_start=D(2023, 3, 1), date_end=D(2023, 12, 31), date_precision="year")
        event = EventFactory(
            date_start=D(2023, 1, 1), date_end=D(2023, 12, 31), date_precision="year"
        )
        assert event.date_display == "2023"

    def test_month_precision_starts_on_the_first(self):
        with refused("start_whole_period"), transaction.atomic():
            EventFactory(date_start=D(2023, 9, 5), date_end=D(2023, 9, 30), date_precision="month")

    def test_unknown_precision_value_is_refused(self):
        with refused("precision_valid"), transaction.atomic():
            EventFactory(date_precision="week")

    def test_statements_obey_the_same_date_rules(self):
        with refused("events_statement_date_order"), transaction.atomic():
            StatementFactory(date_start=D(2023, 11, 10), date_end=D(2023, 11, 9))


@pytest.mark.parametrize(
    ("start", "end", "precision", "status", "expected"),
    [
        (D(2023, 1, 1), D(2023, 12, 31), "year", "occurred", "2023"),
        (D(2023, 9, 1), D(2023, 9, 30), "month", "occurred", "Sep 2023"),
        (D(2023, 11, 9), D(2023, 11, 9), "day", "occurred", "9 Nov 2023"),
        (D(1988, 1, 1), D(1994, 12, 31), "year", "occurred", "1988 – 1994"),
        (D(1990, 1, 1), D(1999, 12, 31), "decade", "occurred", "1990s"),
        (None, D(2023, 11, 9), "unknown", "occurred", "before 9 Nov 2023"),
        (D(2023, 11, 9), None, "unknown", "hypothetical", "after 9 Nov 2023"),
        (D(2022, 2, 24), None, "day", "occurred", "since 24 Feb 2022"),
        (None, D(2023, 11, 9), "unknown", "ongoing", "ongoing as of 9 Nov 2023"),
        (D(2022, 1, 1), D(2023, 11, 9), "year", "ongoing", "since 2022, ongoing as of 9 Nov 2023"),
    ],
)
def test_dates_display_at_their_precision(start, end, precision, status, expected):
    event = Event(date_start=start, date_end=end, date_precision=precision, status=status)
    assert event.date_display == expected


def test_format_interval_without_bounds_says_unknown():
    assert format_interval(None, None, DatePrecision.UNKNOWN) == "date unknown"


class TestEventConstraints:
    def test_unknown_type_is_refused(self):
        with refused("events_event_type_valid"), transaction.atomic():
            EventFactory(type="FIGHT")

    def test_unknown_context_value_is_refused(self):
        with refused("events_event_context_valid"), transaction.atomic():
            EventFactory(context=["military", "sports"])

    def test_unknown_status_is_refused(self):
        with refused("events_event_status_valid"), transaction.atomic():
            EventFactory(status="rumoured")

    def test_an_actor_holds_a_role_once_per_event(self):
        participant = EventParticipantFactory(role="mediator")
        with refused("events_participant_unique"), transaction.atomic():
            EventParticipantFactory(
                event=participant.event, actor=participant.actor, role="mediator"
            )
        EventParticipantFactory(event=participant.event, actor=participant.actor, role="target")
        assert participant.event.participants.count() == 2

    def test_involving_finds_events_by_any_role(self):
        actor = ActorFactory()
        as_target = EventParticipantFactory(actor=actor, role="target").event
        as_mediator = EventParticipantFactory(actor=actor, role="mediator").event
        EventParticipantFactory()
        assert set(Event.objects.involving([actor])) == {as_target, as_mediator}

    def test_involving_narrows_to_roles_and_to_anyone_in_them(self):
        actor = ActorFactory()
        as_target = EventParticipantFactory(actor=actor, role="target").event
        EventParticipantFactory(actor=actor, role="mediator")
        other_target = EventParticipantFactory(role="target").event
        assert list(Event.objects.involving([actor.pk], roles=["target"])) == [as_target]
        assert set(Event.objects.involving(roles=["target"])) == {as_target, other_target}
        assert not Event.objects.involving([]).exists()

    def test_quad_class_follows_from_the_type(self):
        assert Event(type="ASSAULT").quad_class == "material_conflict"
        assert Event(type="CONSULT").quad_class == "verbal_cooperation"
        assert Event(type="DISSOLVE").quad_class is None


class TestEvidence:
    def test_quote_must_equal_the_source_text_at_its_offsets(self):
        event = EventFactory()
        source = SourceFactory()
        with refused("not the text of source"), transaction.atomic():
            Evidence.objects.create(source=source, start=0, end=7, quote="Azerbaij", event=event)
        with refused("not the text of source"), transaction.atomic():
            Evidence.objects.create(source=source, start=0, end=7, quote="Russia!", event=event)
        span = Evidence.objects.create(
            source=source, start=12, end=22, quote="Azerbaijan", event=event
        )
        assert source.text[span.start : span.end] == span.quote

    def test_a_span_past_the_end_of_the_text_is_refused(self):
        source = SourceFactory(text="Short text.")
        with refused("not the text of source"), transaction.atomic():
            Evidence.objects.create(
                source=source, start=6, end=40, quote="text.", event=EventFactory()
            )

    def test_moving_a_span_by_update_is_checked_too(self):
        span = EventFactory().evidence.get()
        with refused("not the text of source"), transaction.atomic():
            Evidence.objects.filter(pk=span.pk).update(start=1, end=8)

    def test_empty_span_is_refused(self):
        source = SourceFactory()
        with refused("events_evidence_span"), transaction.atomic():
            Evidence.objects.create(source=source, start=5, end=5, quote="", event=EventFactory())

    def test_evidence_belongs_to_exactly_one_record(self):
        source = SourceFactory()
        with refused("events_evidence_one_record"), transaction.atomic():
            Evidence.objects.create(source=source, start=0, end=7, quote="Armenia")
        with refused("events_evidence_one_record"), transaction.atomic():
            Evidence.objects.create(
                source=source,
                start=0,
                end=7,
                quote="Armenia",
                event=EventFactory(),
                statement=StatementFactory(),
            )

    def test_model_validation_explains_a_wrong_quote(self):
        source = SourceFactory()
        evidence = Evidence(source=source, start=0, end=7, quote="Russia!", event=EventFactory())
        with pytest.raises(Exception, match="The source text at \\[0:7\\] is “Armenia”"):
            evidence.full_clean()


class TestEveryRecordCitesEvidence:
    def test_an_event_without_evidence_is_refused_at_commit(self, immediate_constraints):
        with refused("cites no evidence"), transaction.atomic():
            Event.objects.create(type="CONSULT", title="Talks", date_end=D(2023, 11, 9))
            immediate_constraints()

    def test_a_statement_without_evidence_is_refused_at_commit(self, immediate_constraints):
        speaker = ActorFactory()
        with refused("cites no evidence"), transaction.atomic():
            speaker.statements.create(kind="claim", content="x", date_end=D(2023, 11, 9))
            immediate_constraints()

    def test_removing_the_last_span_is_refused(self, immediate_constraints):
        event = EventFactory()
        immediate_constraints()
        with refused("would cite no evidence"), transaction.atomic():
            event.evidence.all().delete()
            immediate_constraints()

    def test_a_record_may_drop_one_of_two_spans(self, immediate_constraints):
        event = EventFactory()
        source = event.evidence.get().source
        Evidence.objects.create(source=source, start=12, end=22, quote="Azerbaijan", event=event)
        immediate_constraints()
        event.evidence.filter(start=0).delete()
        immediate_constraints()
        assert [e.quote for e in event.evidence.all()] == ["Azerbaijan"]

    def test_deleting_a_record_deletes_its_evidence(self, immediate_constraints):
        event = EventFactory()
        immediate_constraints()
        event.delete()
        immediate_constraints()
        assert not Evidence.objects.filter(event_id=event.pk).exists()


class TestSource:
    def test_sha256_is_computed_by_the_database_on_every_path(self):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO events_source (title, publisher, url, language, text, sha256,"
                " created_at, updated_at) VALUES ('', '', '', 'en', 'Raw SQL text.', 'bogus',"
                " now(), now()) RETURNING id"
            )
            source_id = cursor.fetchone()[0]
        assert Source.objects.get(pk=source_id).sha256 == Source.digest("Raw SQL text.")
        Source.objects.filter(pk=source_id).update(text="Bulk update text.")
        assert Source.objects.get(pk=source_id).sha256 == Source.digest("Bulk update text.")

    def test_the_same_text_is_stored_once(self):
        SourceFactory(text="Same text.")
        with refused("sha256"), transaction.atomic():
            SourceFactory(text="Same text.")

    def test_text_cannot_change_under_evidence(self):
        source = EventFactory().evidence.get().source
        with refused("cannot change: evidence spans point into it"), transaction.atomic():
            Source.objects.filter(pk=source.pk).update(text="Rewritten.")
        Source.objects.filter(pk=source.pk).update(title="New title")
        assert Source.objects.get(pk=source.pk).title == "New title"

    def test_text_without_evidence_can_change(self):
        source = SourceFactory()
        source.text = "Corrected."
        source.save()
        assert Source.objects.get(pk=source.pk).sha256 == Source.digest("Corrected.")


def test_event_status_values_cover_modality():
    assert set(EventStatus.values) == {"occurred", "ongoing", "planned", "hypothetical", "negated"}
