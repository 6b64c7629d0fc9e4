"""Ranked search and snippets against the date-ordered search, on the benchmark
database (issue #16: a rare and a frequent word stay as fast on the
1,000,000-event benchmark as search is today).

Run after `make bench` (or `manage.py generate_synthetic`) has filled
`.data/bench-postgres`:

    .venv/bin/python bench/search.py [--rounds 15] [--rare yerevan] [--frequent talks]

For each word it asks the event list, in process through Django's test client
(the view, its queries and the JSON; no HTTP), for the first page of 50:

- `date`: the search as it was before ranking and snippets (newest first, no
  snippet: `events.views.snippet_query` is switched off for it), the reference;
- `date + snippet`: what `?q=` answers now (newest first, with snippets);
- `relevance`: `ordering=relevance`, without snippets;
- `relevance + snippet`: what `?q=&ordering=relevance` answers now;
- `relevance, page 2`: the next page of the last, through its cursor.

The variants are interleaved round by round, after a warm-up round. Two
figures each: the median wall time of the rounds, and the CPU time per
request of this process and of its PostgreSQL backend together (from /proc,
summed over the rounds: steadier than wall time on a shared machine). Ratios
are against `date`. Figures:
docs/performance.md.
"""

import argparse
import functools
import os
import statistics
import sys
import time
import urllib.parse
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "search-bench-only")
os.environ.setdefault("EMBEDDED_POSTGRES_DIR", str(ROOT / ".data" / "bench-postgres"))
os.environ.setdefault("EMBEDDED_DB_NAME", "eventledger")
os.environ.setdefault("ALLOWED_HOSTS", "localhost")
os.environ.setdefault("THROTTLE_SEARCH", "1000000/min")
os.environ.setdefault("THROTTLE_ANON", "1000000/min")
warnings.filterwarnings("ignore", message="No directory at")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from events import views  # noqa: E402

PAGE = 50
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float:
    """User and system CPU time of a process so far, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS


def count(word: str) -> tuple[int, int]:
    """Events matching `word` by title or summary, and evidence spans by quote."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM events_event WHERE search_vector @@ "
            "websearch_to_tsquery('english', %s)), (SELECT count(*) FROM events_evidence "
            "WHERE event_id IS NOT NULL AND search_vector @@ websearch_to_tsquery('english', %s))",
            [word, word],
        )
        return cursor.fetchone()


def variants(word: str) -> dict[str, tuple[str, bool]]:
    """name -> (path, with snippets)."""
    q = urllib.parse.quote(word)
    base = f"/api/v1/events/?q={q}&page_size={PAGE}"
    return {
        "date": (base, False),
        "date + snippet": (base, True),
        "relevance": (f"{base}&ordering=relevance", False),
        "relevance + snippet": (f"{base}&ordering=relevance", True),
        "relevance, page 2": ("", True),  # the cursor of the page before
    }


def ask(client: Client, path: str, snippets: bool) -> tuple[float, float, dict, int]:
    """Wall ms, CPU ms (this process and its PostgreSQL backend), the body and
    the number of queries of one request."""
    real = views.snippet_query, views.ranked_rows
    if not snippets:  # the list without snippets: as before
        views.snippet_query = lambda text: {}
        views.ranked_rows = functools.partial(real[1], with_snippets=False)
    try:
        connection.ensure_connection()
        backend = connection.connection.info.backend_pid
        with CaptureQueriesContext(connection) as queries:
            started, app, db = time.perf_counter(), time.process_time(), cpu_ms(backend)
            response = client.get(path, HTTP_HOST="localhost")
            elapsed = (time.perf_counter() - started) * 1000
            cpu = (time.process_time() - app) * 1000 + cpu_ms(backend) - db
    finally:
        views.snippet_query, views.ranked_rows = real
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code} {response.content[:300]!r}")
    return elapsed, cpu, response.json(), len(queries)


def measure(client: Client, word: str, rounds: int) -> dict:
    times: dict[str, list[float]] = {name: [] for name in variants(word)}
    cpu: dict[str, list[float]] = {name: [] for name in variants(word)}
    facts: dict[str, dict] = {}
    for round_ in range(rounds + 1):  # round 0 warms up
        next_link = None
        for name, (path, snippets) in variants(word).items():
            if name == "relevance, page 2":
                if not next_link:
                    continue
                path = next_link.split("localhost", 1)[1]
            elapsed, used, body, queries = ask(client, path, snippets)
            if name == "relevance + snippet":
                next_link = body["next"]
            if round_:
                times[name].append(elapsed)
                cpu[name].append(used)
            facts[name] = {
                "rows": len(body["results"]),
                "queries": queries,
                "snippet": next((r.get("snippet") for r in body["results"]), None),
            }
    medians = {name: statistics.median(t) for name, t in times.items() if t}
    cpu_means = {name: statistics.fmean(t) for name, t in cpu.items() if t}
    return {"medians": medians, "cpu": cpu_means, "facts": facts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--rare", default="yerevan")
    parser.add_argument("--frequent", default="talks")
    args = parser.parse_args()
    client = Client()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_event")
        (events,) = cursor.fetchone()
    print(f"{events:,} events; first page of {PAGE}; median of {args.rounds} rounds (ms)")
    for kind, word in (("rare", args.rare), ("frequent", args.frequent)):
        by_text, by_evidence = count(word)
        result = measure(client, word, args.rounds)
        reference = result["medians"]["date"]
        cpu_reference = result["cpu"]["date"]
        print(
            f"\n{kind} word {word!r}: {by_text:,} events by title or summary, "
            f"{by_evidence:,} evidence spans"
        )
        print(
            f"  {'variant':<22} {'ms':>8} {'× date':>7} {'CPU ms':>7} {'× date':>7} "
            f"{'rows':>5} {'queries':>8}"
        )
        for name, median in result["medians"].items():
            used = result["cpu"][name]
            facts = result["facts"][name]
            print(
                f"  {name:<22} {median:8.1f} {median / reference:7.2f} "
                f"{used:7.1f} {used / cpu_reference:7.2f} {facts['rows']:5d} {facts['queries']:8d}"
            )
        print(f"  a snippet: {result['facts']['relevance + snippet']['snippet']!r}")


if __name__ == "__main__":
    main()
