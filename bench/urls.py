"""The service's URLs plus the baseline list the API list is compared with."""

from django.urls import path

from bench.baseline import BaselineEventList
from config.urls import urlpatterns as service_urlpatterns

urlpatterns = [
    path("bench/baseline/events/", BaselineEventList.as_view(), name="bench-baseline-events"),
    *service_urlpatterns,
]
