import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from ledger.api.errors import api_not_found
from ledger.views import ApiRootView, Endpoint, healthz, readyz

admin.site.site_header = "Event Ledger"
admin.site.site_title = "Event Ledger admin"
admin.site.index_title = "Curate actors, events and statements"

# What GET /api/v1/ lists besides the registered resources.
api_root = ApiRootView.as_view(
    endpoints=(
        Endpoint(
            "changes",
            "change-list",
            "Every create, update and delete across the resources, in commit order: "
            "follow the cursor to keep a copy in sync.",
        ),
        Endpoint(
            "documents",
            "document-list",
            "Store a document with its annotation in one request; ?dry_run=true lists "
            "every problem first.",
        ),
        Endpoint(
            "vocabulary",
            "vocabulary",
            "The codebook: every coded value with its label and description.",
        ),
        Endpoint(
            "documents-plover",
            "document-plover",
            "Import PLOVER records (JSON Lines) through the documents path; ?dry_run=true.",
        ),
        Endpoint(
            "events-export",
            "event-export",
            "The events the list's filters select, streamed as CSV, JSON Lines or dyadic "
            "CSV (format=dyadic: one row per initiator-target pair).",
        ),
        Endpoint(
            "statements-export",
            "statement-export",
            "The statements the list's filters select, streamed as CSV or JSON Lines.",
        ),
        Endpoint(
            "actors-export",
            "actor-export",
            "The actors the list's filters select, streamed as CSV or JSON Lines.",
        ),
        Endpoint(
            "affiliations-export",
            "affiliation-export",
            "The affiliations the list's filters select, streamed as CSV or JSON Lines.",
        ),
        Endpoint(
            "events-export-plover",
            "event-export-plover",
            "The events the list's filters select, as PLOVER records (JSON Lines).",
        ),
        Endpoint(
            "events-counts",
            "event-counts",
            "Event counts by period, type, quad class, actor, country or place (one or two).",
        ),
        Endpoint(
            "statements-counts",
            "statement-counts",
            "Statement counts by period, kind or speaker (one or two).",
        ),
        Endpoint("schema", "schema", "The OpenAPI 3 document of this API."),
        Endpoint("docs", "swagger-ui", "The API's documentation in Swagger UI."),
        Endpoint("redoc", "redoc", "The API's documentation in Redoc."),
    )
)

api_v1 = [
    path("", api_root, name="api-root"),
    path("", include("actors.urls")),
    path("", include("sources.urls")),
    path("", include("events.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's set-up script as a file: no inline script,
    # so the page works under the Content-Security-Policy.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="redoc",
    ),
]

urlpatterns = [
    # Sources and evidence were in the events app until they got their own.
    re_path(
        rf"^{re.escape(settings.ADMIN_URL)}events/(?P<page>(?:source|evidence)/.*)$",
        RedirectView.as_view(url=f"/{settings.ADMIN_URL}sources/%(page)s", query_string=True),
    ),
    path(settings.ADMIN_URL, admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    path("api/v1/", include(api_v1)),
    re_path(r"^api/", api_not_found),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
