from rest_framework.routers import SimpleRouter

from actors.views import ActorViewSet, AffiliationViewSet

# Path converters: an id is an int, so any other segment is an unknown URL (404).
router = SimpleRouter(use_regex_path=False)
router.register("actors", ActorViewSet, basename="actor")
router.register("affiliations", AffiliationViewSet, basename="affiliation")

urlpatterns = router.urls
