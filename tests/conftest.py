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
