"""The admin in a real browser: Playwright driving Debian's Chromium against
the live server. On failure, a screenshot lands in test-artifacts/."""

import os
import re
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection

from events.models import Event

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Chromium is not installed (make install-browser)"
    ),
]


@pytest.fixture
def curator(live_server):
    call_command("seed", verbosity=0)
    call_command("setup_roles", stdout=StringIO())
    user = User.objects.create_user("curator1", password="curator-password-1", is_staff=True)
    user.groups.add(Group.objects.get(name="curator"))
    return user


@pytest.fixture
def browser(request, live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop; the ORM calls in the test are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(20_000)
        yield context
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for number, page in enumerate(context.pages):
                page.screenshot(
                    path=ARTIFACTS / f"{request.node.name}-{number}.png", full_page=True
                )
        chromium.close()
    # The live server's request threads keep their connections open (CONN_MAX_AGE);
    # end them, or the test database cannot be dropped at the end of the run.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def log_in(page, base: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "curator1")
    page.fill("#id_password", "curator-password-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def choose(page, row: str, field: str, search: str, option: str | None = None) -> None:
    """Pick a value in an admin autocomplete (select2) field of an inline row."""
    page.click(f"#{row} .field-{field} .select2-selection")
    page.fill(".select2-container--open .select2-search__field", search)
    results = page.locator(".select2-results__option:not(.loading-results)")
    if option:
        results.filter(has_text=re.compile(f"^{re.escape(option)}$")).click()
    else:
        results.first.click()


def test_a_curator_creates_edits_and_is_stopped_by_a_conflicting_edit(
    browser, curator, live_server
):
    base = live_server.url
    page = browser.new_page()
    log_in(page, base)

    # Create an event with two participants and an evidence span given by its quote.
    page.goto(f"{base}/admin/events/event/add/")
    page.select_option("#id_type", "AID")
    page.fill("#id_title", "Russia intervenes, as seen in the browser")
    page.fill("#id_date_end", "2023-11-09")
    page.select_option("#id_date_precision", "unknown")
    page.click("#participants-group .add-row a")
    page.click("#participants-group .add-row a")
    choose(page, "participants-0", "actor", "Russia", "Russia")
    page.select_option("#id_participants-0-role", "initiator")
    choose(page, "participants-1", "actor", "Armenia", "Armenia")
    page.select_option("#id_participants-1-role", "target")
    choose(page, "evidence-0", "source", "Armenia is facing")
    page.fill(
        "#id_evidence-0-quote",
        "Russia intervened on both occasions to ensure security in the region",
    )
    page.fill("#id_change_reason", "Entered from the article")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    event = Event.objects.get(title="Russia intervenes, as seen in the browser")
    api = page.request.get(f"{base}/api/v1/events/{event.pk}/").json()
    assert [(p["actor"]["name"], p["role"]) for p in api["participants"]] == [
        ("Russia", "initiator"),
        ("Armenia", "target"),
    ]
    assert api["evidence"][0]["quote"] == (
        "Russia intervened on both occasions to ensure security in the region"
    )
    assert api["revision"] == 1

    # Edit it with a reason, and find the edit in its history.
    change_url = f"{base}/admin/events/event/{event.pk}/change/"
    page.goto(change_url)
    assert "<mark>Russia intervened on both occasions" in page.content()
    page.fill("#id_title", "Russia intervenes (edited in the browser)")
    page.fill("#id_change_reason", "Clearer title")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    page.goto(change_url)
    page.click("a.historylink")
    history = page.locator("#ledger-history")
    history.wait_for()
    assert "Clearer title" in history.inner_text()
    assert "Entered from the article" in history.inner_text()
    assert "Russia intervenes (edited in the browser)" in history.inner_text()
    assert page.request.get(f"{base}/api/v1/events/{event.pk}/").json()["revision"] == 2

    # Two curators open the same record; the second save is refused.
    first, second = page, browser.new_page()
    first.goto(change_url)
    second.goto(change_url)
    second.fill("#id_summary", "Summary saved by the other curator.")
    second.click("input[name=_save]")
    second.wait_for_selector(".messagelist .success")
    first.fill("#id_title", "A title from a stale form")
    first.click("input[name=_save]")
    first.wait_for_selector(".errornote")
    assert "Someone else changed this record after you opened it" in first.content()
    stored = page.request.get(f"{base}/api/v1/events/{event.pk}/").json()
    assert stored["summary"] == "Summary saved by the other curator."
    assert stored["title"] == "Russia intervenes (edited in the browser)"
    assert stored["revision"] == 3
    assert os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] == "true"


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ("/api/v1/docs/", ".opblock-summary-path"),  # Swagger UI lists the operations
        ("/api/v1/redoc/", "text=List events"),  # Redoc renders the operations
    ],
)
def test_the_api_docs_work_under_the_content_security_policy(browser, live_server, path, rendered):
    page = browser.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    response = page.goto(f"{live_server.url}{path}")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.locator(rendered).first.wait_for(state="attached")
    violations = [m for m in messages if "Content Security Policy" in m]
    # Redoc's footer asks for its logo from its vendor's host; the policy blocks that
    # image, as it should. Nothing the page needs to work may be blocked.
    needed = [m for m in violations if "img-src" not in m]
    assert needed == [], needed
