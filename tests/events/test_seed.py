import shutil
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from actors.models import Actor, ActorAlias, ActorIdentifier, Affiliation
from events.documents import annotation_digest
from events.models import Event, EventParticipant, Place, Statement, StatementSnapshot
from ledger.models import Change
from sources.models import Evidence, Source

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "000_965ae081fd36cede.txt"
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / FIXTURE.name
SECOND = Path(__file__).resolve().parent / "documents" / "border_talks.txt"

MODELS = [
    Actor,
    ActorAlias,
    ActorIdentifier,
    Affiliation,
    Place,
    Source,
    Event,
    EventParticipant,
    Statement,
    Evidence,
]

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def seed(*paths: Path) -> str:
    from io import StringIO

    out = StringIO()
    call_command("seed", *[str(p) for p in paths], stdout=out)
    return out.getvalue()


def write_document(tmp_path: Path, annotation: str, text: str | None = None) -> Path:
    document = tmp_path / "doc.txt"
    document.write_text(text or SECOND.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "doc.yaml").write_text(annotation, encoding="utf-8")
    return document


def second_annotation() -> str:
    return SECOND.with_suffix(".yaml").read_text(encoding="utf-8")


@pytest.mark.skipif(not SHARED_SEED.exists(), reason="shared/ is not beside the checkout")
def test_the_fixture_is_the_seed_document_byte_for_byte():
    assert FIXTURE.read_bytes() == SHARED_SEED.read_bytes()


@pytest.mark.smoke
def test_seed_loads_the_fixture_document(immediate_constraints):
    output = seed()
    immediate_constraints()  # every event, statement and affiliation cites evidence
    assert "loaded as source" in output
    assert counts() | {} == {
        "Actor": 13,
        "ActorAlias": 7,
        "ActorIdentifier": 11,
        "Affiliation": 4,
        "Place": 5,
        "Source": 1,
        "Event": 14,
        "EventParticipant": 28,
        "Statement": 8,
        "Evidence": 31,
    }
    source = Source.objects.get()
    raw = FIXTURE.read_text(encoding="utf-8")
    assert source.published_on.isoformat() == "2023-11-09"
    assert source.text == raw[raw.index("Armenia is facing") :]
    assert source.sha256 == Source.digest(source.text)
    for evidence in Evidence.objects.all():
        assert source.text[evidence.start : evidence.end] == evidence.quote


@pytest.mark.smoke
def test_seeding_twice_changes_nothing():
    seed()
    before = counts()
    stamps = sorted(Event.objects.values_list("id", "updated_at"))
    output = seed()
    assert "already loaded" in output
    assert counts() == before
    assert sorted(Event.objects.values_list("id", "updated_at")) == stamps


class TestFaithfulToTheSeed:
    @pytest.fixture(autouse=True)
    def _seeded(self):
        seed()

    def test_actors_carry_identifiers_and_aliases(self):
        assert Actor.objects.with_identifier("wikidata", "Q399").get().name == "Armenia"
        russia = Actor.objects.with_identifier("wikidata", "Q159").get()
        assert "Moscow" in {a.name for a in russia.aliases.all()}
        assert {a.slug for a in Actor.objects.all()} >= {
            "armenia",
            "russia",
            "azerbaijan",
            "ukraine",
            "united-states",
            "european-union",
            "soviet-union",
            "nikol-pashinyan",
            "russian-peacekeepers-caucasus",
            "international-community",
            "armenian-ambassador-to-russia",
        }

    def test_pashinyan_is_prime_minister_of_armenia(self):
        affiliation = Affiliation.objects.get(member__slug="nikol-pashinyan")
        assert (affiliation.role, affiliation.organization.slug) == ("Prime Minister", "armenia")
        assert affiliation.start_date is None and affiliation.end_date is None
        assert affiliation.evidence.get().quote == "Armenian Prime Minister Nikol Pashinyan"

    def test_historical_events_are_present_without_invented_dates(self):
        titles = set(Event.objects.values_list("title", flat=True))
        assert {
            "Collapse of the Soviet Union",
            "First war in Nagorno-Karabakh",
            "Second war in Nagorno-Karabakh",
            "Russia invades Ukraine",
            "Russia intervenes in the first Nagorno-Karabakh war",
            "Russia intervenes in the second Nagorno-Karabakh war",
        } <= titles
        collapse = Event.objects.get(title="Collapse of the Soviet Union")
        assert (collapse.date_start, collapse.date_precision) == (None, "unknown")
        assert collapse.date_display == "before 9 Nov 2023"

    def test_the_mediated_talks_are_one_event_with_three_mediators(self):
        talks = Event.objects.get(mode="mediated-talks")
        mediators = talks.participants.filter(role="mediator").values_list("actor__slug", flat=True)
        assert sorted(mediators) == ["european-union", "russia", "united-states"]
        assert talks.status == "hypothetical"

    def test_statements_keep_the_verbatim_words(self):
        appeal = Statement.objects.get(kind="appeal")
        assert appeal.speaker.slug == "armenia"
        assert appeal.quote == "ethnic cleansing"
        assert [a.slug for a in appeal.targets] == ["international-community"]
        assert "“ethnic cleansing”" in appeal.evidence.get().quote
        assert Statement.objects.filter(quote="difficult", speaker__slug="russia").exists()

    def test_pashinyan_statements(self):
        kinds = set(
            Statement.objects.filter(speaker__slug="nikol-pashinyan").values_list("kind", flat=True)
        )
        assert kinds == {"assessment", "concern", "demand"}


def test_a_second_document_reuses_known_actors(immediate_constraints):
    seed()
    output = seed(SECOND)
    immediate_constraints()
    assert "loaded as source" in output
    assert Actor.objects.filter(slug="armenia").count() == 1
    assert Actor.objects.count() == 13  # all four actors of the second document already exist
    talks = Event.objects.get(title__contains="Brussels")
    assert talks.place.name == "Brussels" and talks.date_display == "15 Mar 2024"
    text = talks.evidence.first().source.text
    assert [(e.quote, text[e.start : e.end]) for e in talks.evidence.order_by("start")] == [
        ("Armenia and Azerbaijan held border talks in Brussels on Friday",) * 2,
        ("the talks", "the talks"),
        ("The talks were mediated by the EU",) * 2,
    ]
    assert talks.evidence.order_by("start")[1].start == text.index("called the talks") + 7
    prime_minister = Affiliation.objects.get(member__slug="nikol-pashinyan")
    assert sorted(e.source.published_on.year for e in prime_minister.evidence.all()) == [2023, 2024]


def test_the_second_document_loads_on_its_own():
    seed(SECOND)
    assert counts()["Source"] == 1 and counts()["Event"] == 1 and counts()["Statement"] == 2


def test_a_missing_quote_names_the_item_and_writes_nothing(tmp_path):
    annotation = second_annotation().replace(
        "Azerbaijan said the talks would continue in April", "Azerbaijan walked out"
    )
    with pytest.raises(CommandError) as raised:
        seed(write_document(tmp_path, annotation))
    message = str(raised.value)
    assert "nothing was loaded" in message
    assert "statements[1]" in message and "“Azerbaijan walked out”" in message
    assert "not in the source text" in message
    assert all(n == 0 for n in counts().values())


def test_an_ambiguous_quote_without_a_hint_is_refused(tmp_path):
    annotation = second_annotation().replace('{quote: "the talks", occurrence: 1}', '"the talks"')
    with pytest.raises(
        CommandError,
        match=r"events\[0\] \(brussels-talks\): evidence: The "
        r"quote “the talks” is ambiguous: it occurs 2 times",
    ):
        seed(write_document(tmp_path, annotation))
    assert all(n == 0 for n in counts().values())


def test_an_error_late_in_the_file_rolls_back_everything_before_it(tmp_path):
    seed()
    before = counts()
    annotation = second_annotation().replace("kind: promise", "kind: prophecy")
    with pytest.raises(CommandError, match=r"statements\[1\]: kind: Value 'prophecy'"):
        seed(write_document(tmp_path, annotation))
    assert counts() == before


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("speaker: azerbaijan", "speaker: atlantis"), r"unknown actor 'atlantis'"),
        (("place: brussels", "place: paris"), r"unknown place 'paris' \(declare it under places\)"),
        (("    quote: constructive", "    quoted: constructive"), r"unknown fields \['quoted'\]"),
        (("format: event-ledger-annotation/1", "format: other"), r"expected 'format: "),
        (
            ('    evidence: ["Azerbaijan said', '    evidence: []\n    x: ["Azerbaijan said'),
            r"unknown fields \['x'\]",
        ),
    ],
)
def test_bad_annotations_are_refused_with_a_clear_message(tmp_path, change, expected):
    with pytest.raises(CommandError, match=expected):
        seed(write_document(tmp_path, second_annotation().replace(*change)))
    assert all(n == 0 for n in counts().values())


def test_an_item_without_evidence_is_refused(tmp_path):
    annotation = second_annotation().replace(
        '    evidence: ["Azerbaijan said the talks would continue in April"]', "    evidence: []"
    )
    with pytest.raises(CommandError, match=r"statements\[1\]: cites no evidence"):
        seed(write_document(tmp_path, annotation))


def test_a_document_without_its_header_is_refused(tmp_path):
    with pytest.raises(CommandError, match="must start with 'date YYYY-MM-DD'"):
        seed(write_document(tmp_path, second_annotation(), text="Armenia and Azerbaijan met."))


def test_a_document_without_annotation_is_refused(tmp_path):
    document = tmp_path / "lonely.txt"
    shutil.copy(SECOND, document)
    with pytest.raises(CommandError, match=r"no annotation file lonely\.yaml"):
        seed(document)


# Each seed run its own transaction, as in use: a record's revision goes up once per transaction.
@pytest.mark.django_db(transaction=True)
def test_a_corrected_annotation_is_applied_to_what_the_document_produced(tmp_path):
    document = write_document(tmp_path, second_annotation())
    assert "loaded as source" in seed(document)
    source = Source.objects.get()
    talks = Event.objects.get(title__startswith="Armenia and Azerbaijan hold")
    promise, assessment = (
        Statement.objects.get(kind="promise"),
        Statement.objects.get(kind="assessment"),
    )
    before = counts()
    changes = Change.objects.order_by("pk").last().pk
    assert "nothing changed" in seed(document)  # the same annotation again
    assert counts() == before and Change.objects.order_by("pk").last().pk == changes

    corrected = (
        second_annotation()
        .replace("context: [diplomatic, territory]", "context: [diplomatic]")  # a fix
        .replace("content: The talks will continue in April.", "content: Talks resume in April.")
        # the assessment is withdrawn: its item is gone
        .replace(
            second_annotation()[
                second_annotation().index(
                    "  - speaker: nikol-pashinyan"
                ) : second_annotation().index("  - speaker: azerbaijan")
            ],
            "",
        )
    )
    document.with_suffix(".yaml").write_text(corrected, encoding="utf-8")
    output = seed(document)
    # the event, the statement and the source (its annotation)
    assert "corrected annotation was applied: 3 updated, 0 created, 1 deleted" in output
    # The same records, changed in place; the withdrawn one deleted, with history.
    talks.refresh_from_db()
    promise.refresh_from_db()
    assert (talks.context, talks.revision) == (["diplomatic"], 2)
    assert (promise.content, promise.revision) == ("Talks resume in April.", 2)
    assert not Statement.objects.filter(pk=assessment.pk).exists()
    assert counts() == {**before, "Statement": 1, "Evidence": before["Evidence"] - 1}
    digest = annotation_digest(yaml.safe_load(corrected))
    for record in (talks, promise):
        update = record.snapshots.get(pgh_label="update")
        assert (
            update.pgh_context.metadata.items()
            >= {
                "via": "seed",
                "source_id": source.pk,
                "annotation_sha256": digest,
            }.items()
        )
    deleted = StatementSnapshot.objects.get(pgh_obj_id=assessment.pk, pgh_label="delete")
    assert deleted.pgh_context.metadata["annotation_sha256"] == digest
    assert set(
        Change.objects.filter(pk__gt=changes).values_list("resource", "object_id", "action")
    ) == {
        ("events", talks.pk, "update"),
        ("statements", promise.pk, "update"),
        ("statements", assessment.pk, "delete"),
        ("sources", source.pk, "update"),  # its annotation
    }
    source.refresh_from_db()
    assert source.annotation["sha256"] == digest
    # Applied once; the second run finds nothing to do.
    assert "nothing changed" in seed(document)


def test_a_document_loaded_before_annotations_were_kept_is_not_corrected_silently(tmp_path):
    document = write_document(tmp_path, second_annotation())
    seed(document)
    Source.objects.update(annotation=None)  # as a database from before kept them
    corrected = second_annotation().replace("The talks will continue in April.", "In April.")
    document.with_suffix(".yaml").write_text(corrected, encoding="utf-8")
    output = seed(document)
    assert "another version of its annotation" in output
    assert "the changes were NOT applied" in output
    assert not Statement.objects.filter(content="In April.").exists()
