"""Throttles: per anonymous address, per user, and for searches; a cache
outage lets requests through."""

import logging

from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.throttling import (
    AnonRateThrottle,
    BaseThrottle,
    SimpleRateThrottle,
    UserRateThrottle,
)

logger = logging.getLogger(__name__)


class FailOpenThrottleMixin(SimpleRateThrottle):
    """Rates read at request time (so a changed setting takes effect), and a cache
    outage lets requests through rather than failing them all."""

    scope: str  # each throttle names its rate

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # the shared cache is down: serve, and say so in the log
            logger.warning("Throttle cache unavailable; request not throttled.", exc_info=True)
            return True


class AnonThrottle(FailOpenThrottleMixin, AnonRateThrottle):
    pass


class UserThrottle(FailOpenThrottleMixin, UserRateThrottle):
    """The signed-in users' rate. Anonymous requests are limited by the
    anonymous rate alone: DRF's user throttle would also count them, by
    address, against this rate, keeping a second history per request."""

    def get_cache_key(self, request, view):
        if not request.user.is_authenticated:
            return None
        return super().get_cache_key(request, view)


class SearchThrottle(FailOpenThrottleMixin, SimpleRateThrottle):
    """Searches have a budget of their own: a request to a list or the export
    that carries a `q` costs far more than one without, so it is also counted
    against THROTTLE_SEARCH per anonymous address, or THROTTLE_SEARCH_USER per
    signed-in user. Requests without `q` are not counted."""

    scope = "search"

    def get_rate(self):
        return settings.THROTTLE_SEARCH  # set per request in allow_request

    def allow_request(self, request, view):
        if not request.query_params.get("q") or getattr(view, "action", None) not in (
            None,  # a plain view: the export
            "list",
        ):
            return True
        user = request.user.is_authenticated
        self.rate = settings.THROTTLE_SEARCH_USER if user else settings.THROTTLE_SEARCH
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        if request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def client_address(request) -> str | None:
    """The client's address as DRF's throttles identify it: REMOTE_ADDR, or with
    NUM_PROXIES trusted proxies in front, the address the outermost of them saw."""
    return BaseThrottle().get_ident(request)
