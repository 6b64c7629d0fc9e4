import pytest
from django.db import connection


@pytest.fixture
def immediate_constraints(db):
    """Check deferred constraints (the evidence triggers) at once, as a commit would.

    Tests run inside a transaction that is rolled back, so deferred triggers
    would otherwise never fire.
    """

    def check() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    return check


@pytest.fixture(autouse=True)
def _unhashed_static_files(settings):
    """Production serves collected, hashed static files; tests have no collected
    files, so pages link to the plain ones."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counters live in the cache; every test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def seeded(db):
    from django.core.management import call_command

    call_command("seed", verbosity=0)


@pytest.fixture
def token_client(db):
    """A client authenticated by token as a new user holding `permissions`
    (codenames such as "add_event"). Its writes send `If-Match: *` (any
    revision) unless `if_match` says otherwise; the revision tests set it."""
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(*permissions: str, if_match: str | None = "*") -> APIClient:
        user = User.objects.create_user(f"user{User.objects.count() + 1}")
        user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
        token = Token.objects.create(user=user)
        client = APIClient()
        headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
        if if_match is not None:
            headers["HTTP_IF_MATCH"] = if_match
        client.credentials(**headers)
        return client

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether
    the test failed (the browser fixture then saves a screenshot)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_terminal_summary(terminalreporter):
    """Say loudly, in the summary, that the browser tests did not run: a skip
    line among the others is easy to miss, and `make test` does not install
    Chromium (it needs root)."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if report.nodeid.startswith("tests/test_browser.py")
    ]
    if skipped:
        terminalreporter.write_sep(
            "!",
            f"{len(skipped)} browser tests (tests/test_browser.py) SKIPPED: Chromium is not"
            " installed; run `make install-browser` as root to include them",
            red=True,
            bold=True,
        )
