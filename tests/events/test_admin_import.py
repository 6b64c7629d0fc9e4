"""The admin's document import (events/admin_import.py): a check that stores
nothing, an import through the documents endpoint's loader, curators only."""

import datetime
import html
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from actors.models import Actor
from events.models import Event, Statement
from ledger.models import Change
from sources.models import Evidence, Source

pytestmark = pytest.mark.django_db

IMPORT = "/admin/events/event/import-document/"
BORDER_TALKS = Path(__file__).resolve().parent / "documents" / "border_talks.txt"
CURATOR = (
    "add_source",
    "add_evidence",
    "add_actor",
    "change_actor",
    "add_affiliation",
    "add_place",
    "change_place",
    "add_event",
    "add_statement",
    "view_source",
)


def staff(*permissions: str) -> Client:
    user = User.objects.create_user(f"staff{User.objects.count() + 1}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def curator():
    return staff(*CURATOR)


def counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Source, Evidence, Actor, Event, Statement, Change)
    }


def document_file() -> str:
    """The test document as a file holds it: a `date` header, then the text."""
    return BORDER_TALKS.read_text(encoding="utf-8")


def text_only() -> str:
    return document_file().split("\n", 1)[1]


def annotation() -> str:
    return BORDER_TALKS.with_suffix(".yaml").read_text(encoding="utf-8")


def pasted(action: str, text: str | None = None, yaml_text: str | None = None, **fields) -> dict:
    return {
        "action": action,
        "text": text_only() if text is None else text,
        "published_on": "2024-03-15",
        "annotation": annotation() if yaml_text is None else yaml_text,
        **fields,
    }


def test_a_check_shows_every_problem_with_its_pointer_and_hint_and_stores_nothing(seeded, curator):
    broken = (
        annotation()
        .replace("type: CONSULT", "type: NEGOTIATE")
        .replace('"The talks were mediated by the EU"', '"The talks were mediated by the eu"')
    )
    before = counts()
    response = curator.post(IMPORT, pasted("check", yaml_text=broken))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "4 problems: nothing was stored." in page
    assert "/events/0/type" in page and "invalid_choice" in page
    assert "Accepted: AGREE, " in page  # the hint
    assert "/events/0/evidence/1" in page and "quote_not_found" in page
    assert "The text has “The talks were mediated by the EU”" in page
    assert "/statements/0/about_events/0" in page and "depends_on_problem" in page
    assert "/statements/1/about_events/0" in page
    assert counts() == before
    # The text and annotation come back to be corrected.
    assert "type: NEGOTIATE" in page


def test_a_check_of_a_valid_document_shows_what_would_be_stored_and_stores_nothing(seeded, curator):
    before = counts()
    response = curator.post(IMPORT, pasted("check"))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "The document can be imported. Nothing was stored yet" in page
    assert "<td>events</td><td>1</td>" in page and "<td>statements</td><td>2</td>" in page
    armenia = Actor.objects.get(slug="armenia")
    # Matched records link to their admin page, with how they were found.
    assert f'<a href="/admin/actors/actor/{armenia.pk}/change/">#{armenia.pk}</a>' in page
    assert "identifier wikidata:Q399" in page
    assert counts() == before


def test_a_check_shows_near_matches_as_suggestions_and_additions(seeded, curator):
    document = annotation().replace(
        "  - {key: azerbaijan, name: Azerbaijan, kind: country, country: AZE, "
        "identifiers: {wikidata: Q227}}",
        "  - {key: azerbaijan, name: Azerbaijan, kind: country, country: AZE, "
        "identifiers: {wikidata: Q227}, description: Republic of Azerbaijan.}\n"
        "  - {key: armenia-2, name: Armenija, kind: country}",
    )
    response = curator.post(IMPORT, pasted("check", yaml_text=document))
    page = html.unescape(response.content.decode())
    assert "looks like existing `armenia`" in page
    assert "<td>description</td>\n          <td>Republic of Azerbaijan.</td>" in page


def test_an_import_of_uploaded_files_stores_the_document_with_its_history(seeded, curator):
    before = counts()
    response = curator.post(
        IMPORT,
        {
            "action": "import",
            "text_file": SimpleUploadedFile("border_talks.txt", document_file().encode()),
            "annotation_file": SimpleUploadedFile("border_talks.yaml", annotation().encode()),
        },
    )
    source = Source.objects.get(title="Border talks in Brussels")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/sources/source/{source.pk}/change/"
    # The header gave the date and is not part of the text.
    assert source.published_on == datetime.date(2024, 3, 15)
    assert source.text == text_only()
    talks = Event.objects.get(title__contains="Brussels")
    assert talks.evidence.count() == 3 and talks.participants.count() == 3
    after = counts()
    assert after["Source"] == before["Source"] + 1
    assert after["Statement"] == before["Statement"] + 2
    assert after["Actor"] == before["Actor"]  # all four found among the seed's
    # History says who imported it, and from where.
    context = talks.snapshots.get().pgh_context.metadata
    assert context["via"] == "import"
    assert context["username"] == "staff1" and context["auth"] == "session"
    assert context["url"] == IMPORT
    assert {s.pgh_context.metadata["via"] for s in source.snapshots.all()} == {"import"}
    assert Change.objects.filter(resource="events", object_id=talks.pk).count() == 1
    page = curator.get(response["Location"]).content.decode()
    assert (
        "was imported (created: places: 1, events: 1, statements: 2); "
        "4 declaration(s) matched stored records."
    ) in html.unescape(page)


def test_an_import_with_problems_stores_nothing_and_shows_the_report(seeded, curator):
    before = counts()
    broken = annotation().replace("kind: city", "kind: village-ish")
    response = curator.post(IMPORT, pasted("import", yaml_text=broken))
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "problems: nothing was stored." in page and "/places/0/kind" in page
    assert counts() == before


def test_a_text_already_stored_is_a_problem_at_text(seeded, curator):
    curator.post(IMPORT, pasted("import"))
    response = curator.post(IMPORT, pasted("check"))
    page = html.unescape(response.content.decode())
    assert "1 problem: nothing was stored." in page and "<code>/text</code>" in page


def test_pasted_line_breaks_are_stored_as_the_text_has_them(seeded, curator):
    text = "First line of a new report.\r\nArmenia and Azerbaijan met.\r\n"
    yaml_text = "format: event-ledger-annotation/1\nsource: {title: Two lines}\n"
    response = curator.post(IMPORT, pasted("import", text=text, yaml_text=yaml_text))
    assert response.status_code == 302
    assert Source.objects.get(title="Two lines").text == text.replace("\r\n", "\n")


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("format: [unclosed", "YAML parse error"),
        ("title: no format line\n", "format: event-ledger-annotation/1"),
        ("a: &x 1\nb: *x\n", "aliases (*name) are not accepted"),
        ('format: event-ledger-annotation/1\nsource: {title: "nul \\0"}\n', "NUL"),
    ],
)
def test_a_bad_annotation_is_a_form_error(seeded, curator, yaml_text, message):
    before = counts()
    response = curator.post(IMPORT, pasted("import", yaml_text=yaml_text))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["annotation"] and message in errors["annotation"][0]
    assert message in html.unescape(response.content.decode())
    assert counts() == before


def test_the_form_asks_for_a_text_and_an_annotation_once_each(seeded, curator):
    response = curator.post(
        IMPORT,
        {
            "action": "check",
            "text": "",
            "annotation": annotation(),
            "annotation_file": SimpleUploadedFile("a.yaml", annotation().encode()),
        },
    )
    errors = response.context["form"].errors
    assert errors["text"] == ["Paste it here or upload a file."]
    assert errors["annotation"] == ["Paste it or upload a file, not both."]


def test_an_uploaded_file_must_be_utf8_and_agree_with_the_date_given(seeded, curator):
    response = curator.post(
        IMPORT,
        {
            "action": "check",
            "text_file": SimpleUploadedFile("t.txt", "date 2024-03-15\ncafé".encode("latin-1")),
            "annotation": annotation(),
        },
    )
    assert response.context["form"].errors["text_file"] == ["The file is not UTF-8 text."]
    response = curator.post(
        IMPORT,
        {
            "action": "check",
            "text_file": SimpleUploadedFile("t.txt", document_file().encode()),
            "published_on": "2024-03-16",
            "annotation": annotation(),
        },
    )
    assert (
        response.context["form"]
        .errors["published_on"][0]
        .startswith("The file's header says 2024-03-15")
    )


def test_an_uploaded_file_over_the_request_limit_is_refused(seeded, curator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    response = curator.post(
        IMPORT,
        {
            "action": "check",
            "text": text_only(),
            "annotation_file": SimpleUploadedFile("big.yaml", annotation().encode() * 2),
        },
    )
    [error] = response.context["form"].errors["annotation_file"]
    assert error.startswith("At most 2,000 bytes; this file has ")


def test_the_page_escapes_what_it_shows(seeded, curator):
    script = "<script>alert(1)</script>"
    hostile = annotation().replace("type: CONSULT", f'type: "{script}"')
    response = curator.post(IMPORT, pasted("check", text=text_only() + script, yaml_text=hostile))
    assert response.status_code == 200
    page = response.content.decode()
    assert script not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "/events/0/type" in page  # the problem shown, escaped
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_staff_without_a_curators_permissions_get_403(seeded):
    viewer = staff("view_source", "view_event", "add_event", "add_statement")
    assert viewer.get(IMPORT).status_code == 403
    before = counts()
    assert viewer.post(IMPORT, pasted("import")).status_code == 403
    assert counts() == before
    # Nor do they see the button.
    assert "Import a document" not in viewer.get("/admin/sources/source/").content.decode()


def test_anonymous_visitors_are_sent_to_the_login(seeded, client):
    response = client.get(IMPORT)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    before = counts()
    assert client.post(IMPORT, pasted("import")).status_code == 302
    assert counts() == before


def test_a_post_without_the_csrf_token_is_refused(seeded):
    user = User.objects.create_user("curator", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=CURATOR))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    before = counts()
    assert client.post(IMPORT, pasted("import")).status_code == 403
    assert counts() == before


def test_only_get_and_post_are_answered(curator):
    assert curator.put(IMPORT).status_code == 405
    assert curator.delete(IMPORT).status_code == 405


def test_the_sources_list_leads_curators_to_the_import(seeded, curator):
    response = curator.get("/admin/sources/source/")
    assert response.status_code == 200
    assert f'<a href="{IMPORT}" class="addlink">Import a document</a>' in response.content.decode()
    form = curator.get(IMPORT)
    assert form.status_code == 200
    page = form.content.decode()
    assert 'enctype="multipart/form-data"' in page and "csrfmiddlewaretoken" in page
