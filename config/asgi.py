"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()

# Web processes run as the database role that may not rewrite history.
from ledger.database_role import serve_as_app_role  # noqa: E402

serve_as_app_role()
