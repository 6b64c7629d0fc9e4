"""WSGI entry point, as used by gunicorn: `gunicorn config.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# The web process runs as the database role that may not rewrite history.
from ledger.database_role import serve_as_app_role  # noqa: E402

serve_as_app_role()
