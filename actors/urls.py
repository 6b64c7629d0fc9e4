from rest_framework.routers import SimpleRouter

from actors.views import ActorViewSet, AffiliationViewSet

router = SimpleRouter()
router.register("actors", ActorViewSet, basename="actor")
router.register("affiliations", AffiliationViewSet, basename="affiliation")

urlpatterns = router.urls
