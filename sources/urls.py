from rest_framework.routers import SimpleRouter

from sources.views import SourceViewSet

# Path converters: an id is an int, so any other segment is an unknown URL (404).
router = SimpleRouter(use_regex_path=False)
router.register("sources", SourceViewSet, basename="source")

urlpatterns = router.urls
