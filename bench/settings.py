"""Settings of the benchmarked server: the service's own, unchanged, plus the
URL of the baseline view (bench/urls.py)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
