"""How long counts take on the benchmark database (issue 16: on 1,000,000
events, monthly counts of all events under 300 ms, of one actor or one type
under 100 ms).

Run after `make bench` (or `manage.py generate_synthetic`) has filled
`.data/bench-postgres`; it only reads:

    .venv/bin/python bench/counts.py [--rounds 15]

Requests go through Django's test client in this process (middleware, DRF,
the filters, JSON: all but the socket), anonymous, throttles out of reach.
Each scenario is measured against a reference in the same run, alternating
request and reference ROUNDS times after a warm-up: the plain SQL
`SELECT count(*)` of the same rows (what any count of them pays), and, for all
events, the event list's first page. The actor is the one with the most
participations; the type, the most frequent (the slowest of each). Figures:
docs/performance.md, "Counts". Exit status 1 when a target is missed.
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "counts-bench-only")
os.environ.setdefault("EMBEDDED_POSTGRES_DIR", str(ROOT / ".data" / "bench-postgres"))
os.environ.setdefault("EMBEDDED_DB_NAME", "eventledger")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
for name in ("THROTTLE_ANON", "THROTTLE_USER", "THROTTLE_SEARCH", "THROTTLE_SEARCH_USER"):
    os.environ.setdefault(name, "100000000/s")
warnings.filterwarnings("ignore", message="No directory at")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402

from actors.models import Actor  # noqa: E402
from events.models import Event, EventParticipant  # noqa: E402

URL = "/api/v1/events/counts/"


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def sql_count(sql: str, params: list):
    def run():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    return run


def request(client: Client, path: str):
    def run():
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.content[:500])

    return run


def measure(scenario: dict, rounds: int) -> dict:
    """The scenario and its reference, alternated `rounds` times after one warm-up each."""
    scenario["run"]()
    scenario["reference_run"]()
    times, references = [], []
    for _ in range(rounds):
        times.append(timed(scenario["run"]))
        references.append(timed(scenario["reference_run"]))
    median, reference = statistics.median(times), statistics.median(references)
    return {
        "request": scenario["request"],
        "reference": scenario["reference"],
        "target_ms": scenario.get("target_ms"),
        "median_ms": round(median, 1),
        "p90_ms": round(statistics.quantiles(times, n=10)[-1], 1),
        "reference_median_ms": round(reference, 1),
        "ratio": round(median / reference, 2),
        "met": scenario.get("target_ms") is None or median < scenario["target_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    events = Event.objects.count()
    busiest = (
        EventParticipant.objects.values("actor")
        .annotate(n=Count("event", distinct=True))
        .order_by("-n")
        .first()
    )
    assert busiest is not None, "no participations: run `make bench` first"
    actor = Actor.objects.get(pk=busiest["actor"])
    common = Event.objects.values("type").annotate(n=Count("id")).order_by("-n").first()
    assert common is not None
    kind = common["type"]
    print(
        f"{events:,} events; actor {actor.slug} in {busiest['n']:,} of them; type {kind} "
        f"in {common['n']:,}; migrations not applied: {[m.name for m, _ in pending] or 'none'}"
    )

    client = Client()
    participates = (
        "SELECT count(*) FROM events_event e WHERE EXISTS (SELECT 1 FROM "
        "events_eventparticipant p WHERE p.event_id = e.id AND p.actor_id = %s)"
    )
    scenarios = {
        "month_all": {
            "request": f"{URL}?by=month",
            "reference": "SELECT count(*) FROM events_event",
            "reference_sql": ("SELECT count(*) FROM events_event", []),
            "target_ms": 300,
        },
        "month_all_vs_list": {
            "request": f"{URL}?by=month",
            "reference": "GET /api/v1/events/?page_size=50",
            "reference_path": "/api/v1/events/?page_size=50",
        },
        "month_actor": {
            "request": f"{URL}?by=month&actor={actor.slug}",
            "reference": "SELECT count(*) of the actor's events (EXISTS participant)",
            "reference_sql": (participates, [actor.pk]),
            "target_ms": 100,
        },
        "month_type": {
            "request": f"{URL}?by=month&type={kind}",
            "reference": f"SELECT count(*) FROM events_event WHERE type = '{kind}'",
            "reference_sql": ("SELECT count(*) FROM events_event WHERE type = %s", [kind]),
            "target_ms": 100,
        },
        "month_type_all": {
            "request": f"{URL}?by=month,type",
            "reference": "SELECT count(*) FROM events_event",
            "reference_sql": ("SELECT count(*) FROM events_event", []),
        },
        "actor_top50": {
            "request": f"{URL}?by=actor",
            "reference": "SELECT count(*) FROM events_event",
            "reference_sql": ("SELECT count(*) FROM events_event", []),
        },
        "statements_month": {
            "request": "/api/v1/statements/counts/?by=month",
            "reference": "SELECT count(*) FROM events_statement",
            "reference_sql": ("SELECT count(*) FROM events_statement", []),
        },
    }
    results = {}
    for name, scenario in scenarios.items():
        scenario["run"] = request(client, scenario["request"])
        if "reference_sql" in scenario:
            scenario["reference_run"] = sql_count(*scenario["reference_sql"])
        else:
            scenario["reference_run"] = request(client, scenario["reference_path"])
        results[name] = measure(scenario, args.rounds)

    print(
        f"\n{'scenario':20} {'median ms':>10} {'p90 ms':>8} {'ref ms':>8} {'ratio':>6} "
        f"{'target':>7}  request"
    )
    for name, r in results.items():
        target = f"<{r['target_ms']}" if r["target_ms"] else ""
        flag = "" if r["met"] else "  MISSED"
        print(
            f"{name:20} {r['median_ms']:>10} {r['p90_ms']:>8} {r['reference_median_ms']:>8} "
            f"{r['ratio']:>6} {target:>7}  {r['request']}{flag}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "counts-latest.json").write_text(
        json.dumps(
            {
                "events": events,
                "actor": {"slug": actor.slug, "events": busiest["n"]},
                "type": {"type": kind, "events": common["n"]},
                "pending_migrations": [m.name for m, _ in pending],
                "rounds": args.rounds,
                "results": results,
            },
            indent=2,
        )
    )
    return 0 if all(r["met"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
