from django.urls import path
from rest_framework.routers import SimpleRouter

from events.counts import EventCountsView, StatementCountsView
from events.plover_views import PloverExportView, PloverImportView
from events.views import (
    ActorExportView,
    AffiliationExportView,
    DocumentDetailView,
    DocumentView,
    EventExportView,
    EventViewSet,
    PlaceViewSet,
    SourceMentionsView,
    StatementExportView,
    StatementViewSet,
)
from events.vocabulary import VocabularyView
from ledger.views import ChangeFeedView

# Path converters: an id is an int, so any other segment is an unknown URL (404).
router = SimpleRouter(use_regex_path=False)
router.register("events", EventViewSet, basename="event")
router.register("statements", StatementViewSet, basename="statement")
router.register("places", PlaceViewSet, basename="place")

urlpatterns = [
    path("changes/", ChangeFeedView.as_view(), name="change-list"),
    path("documents/", DocumentView.as_view(), name="document-list"),
    path("documents/plover/", PloverImportView.as_view(), name="document-plover"),
    path("documents/<int:pk>/", DocumentDetailView.as_view(), name="document-detail"),
    path("sources/<int:pk>/mentions/", SourceMentionsView.as_view(), name="source-mentions"),
    path("events/export", EventExportView.as_view(), name="event-export"),
    path("events/export/plover", PloverExportView.as_view(), name="event-export-plover"),
    path("statements/export", StatementExportView.as_view(), name="statement-export"),
    # Actors and affiliations are exported here, beside the exports they share
    # their machinery with (events/export.py): actors/ may not import events/.
    path("actors/export", ActorExportView.as_view(), name="actor-export"),
    path("affiliations/export", AffiliationExportView.as_view(), name="affiliation-export"),
    path("events/counts/", EventCountsView.as_view(), name="event-counts"),
    path("statements/counts/", StatementCountsView.as_view(), name="statement-counts"),
    path("vocabulary/", VocabularyView.as_view(), name="vocabulary"),
    *router.urls,
]
