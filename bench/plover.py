"""How fast the PLOVER export streams on the benchmark database (issue 16: at
least 100,000 events/s in constant memory), against the JSON Lines export of
the same events in the same run.

Run after `make bench` (or `manage.py generate_synthetic`) has filled
`.data/bench-postgres`; it only reads:

    .venv/bin/python bench/plover.py [--rounds 3]

Each export goes through Django's test client in this process (middleware,
DRF, the export's bounds: all but the socket), signed in (anonymous clients
may export 10,000 events), and is read to its end. Memory is this process's
peak resident size before and after: a file held in memory would show as
its size. Figures: docs/plover.md, "Speed". Exit status 1 when the target is
missed.
"""

import argparse
import os
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "plover-bench-only")
os.environ.setdefault("EMBEDDED_POSTGRES_DIR", str(ROOT / ".data" / "bench-postgres"))
os.environ.setdefault("EMBEDDED_DB_NAME", "eventledger")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
for name in ("THROTTLE_ANON", "THROTTLE_USER", "THROTTLE_SEARCH", "THROTTLE_SEARCH_USER"):
    os.environ.setdefault(name, "100000000/s")
warnings.filterwarnings("ignore", message="No directory at")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from events.models import Event  # noqa: E402

TARGET_EVENTS_PER_S = 100_000
EXPORTS = {
    "plover": "/api/v1/events/export/plover",
    "jsonl": "/api/v1/events/export?format=jsonl",
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read(client: Client, url: str) -> tuple[float, int, int]:
    """Seconds, lines and bytes of one whole export."""
    start = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200, response.content
    lines = size = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        size += len(chunk)
    return time.perf_counter() - start, lines, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    events = Event.objects.count()
    user, _ = User.objects.get_or_create(username="plover-bench")
    client = Client()
    client.force_login(user)
    print(f"{events:,} events, {rounds} rounds each, alternating")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM events_event) - (SELECT count(*) FROM "
            "events_ploverrecord), (SELECT count(DISTINCT event_id) FROM events_ploverstale)"
        )
        missing, stale = cursor.fetchone()
    if missing or stale:
        # The export builds those as it reads them (docs/plover.md, "Stored records").
        print(
            f"{missing:,} events without a stored record and {stale:,} marked stale: "
            "run `manage.py refresh_plover` first to measure the stored records"
        )
    before = peak_rss_mb()
    timings: dict[str, list[float]] = {name: [] for name in EXPORTS}
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        for name, url in EXPORTS.items():
            seconds, lines, size = read(client, url)
            assert lines == events, (name, lines, events)
            timings[name].append(seconds)
            sizes[name] = size
    growth = peak_rss_mb() - before
    rates = {name: events / statistics.median(times) for name, times in timings.items()}
    for name, rate in rates.items():
        print(f"{name:7} {rate:>10,.0f} events/s (median), {sizes[name] / 1e6:,.0f} MB")
    print(f"peak memory grew {growth:,.0f} MB over the run")
    met = rates["plover"] >= TARGET_EVENTS_PER_S
    print(f"target {TARGET_EVENTS_PER_S:,} events/s: {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
