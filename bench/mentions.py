"""How long the mention suggestions take with 100,000 actors: building the
automaton of every name and alias, and finding the mentions of a
4,000-character document with it (events.mentions).

Run on a database of its own, e.g.

    EMBEDDED_DB_NAME=eventledger_mentions_bench .venv/bin/python bench/mentions.py

It migrates that database and, the first time, loads ACTORS actors with one
alias each and PLACES places through the bulk loader (distinct made-up names
of one to three words), then times, in process: reading the names, building
the automaton, the version check a request makes, and finding the mentions
(`mentions()`, the automaton built) of a document made of the seed article and
a paragraph naming 40 of the stored actors. Figures: docs/performance.md.
"""

import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "mentions-bench-only")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from actors.models import Actor, ActorAlias  # noqa: E402
from events import mentions as found  # noqa: E402
from events.documents import read_document  # noqa: E402
from events.models import Place  # noqa: E402
from events.synthetic import TABLES  # noqa: E402
from ledger.bulk import BulkLoader  # noqa: E402

ACTORS = 100_000
PLACES = 10_000
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["an", "el", "or", "ish"]
SEED = ROOT / "fixtures" / "000_965ae081fd36cede.txt"


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def load(rng: random.Random) -> None:
    names: set[str] = set()
    while len(names) < ACTORS + PLACES:
        names.add(" ".join(word(rng) for _ in range(rng.randint(1, 3))))
    ordered = sorted(names)
    rng.shuffle(ordered)
    actor_names, place_names = ordered[:ACTORS], ordered[ACTORS:]
    actor_ids = BulkLoader.reserve_ids(Actor, ACTORS)
    place_ids = BulkLoader.reserve_ids(Place, PLACES)
    tables = [t for t in TABLES if t.model in (Actor, Place)]
    loader = BulkLoader(tables, metadata={"command": "bench/mentions.py"})
    loader.load(
        {
            "actors_actor": [
                (pk, f"bench-{pk}", name, "person", "ARM", "", "")
                for pk, name in zip(actor_ids, actor_names, strict=True)
            ],
            "events_place": [
                (pk, f"bench-place-{pk}", name, "city", "ARM", None, None)
                for pk, name in zip(place_ids, place_names, strict=True)
            ],
        }
    )
    # One alias each (the last word, or the initials of a longer name). The
    # bulk loader keeps history, which aliases have none of their own: plain
    # COPY, triggers off as the loader has them for its batches.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        with cursor.copy("COPY actors_actoralias (actor_id, name, language) FROM STDIN") as copy:
            for pk, name in zip(actor_ids, actor_names, strict=True):
                parts = name.split()
                alias = "".join(p[0] for p in parts) if len(parts) == 3 else parts[-1] + "ia"
                copy.write_row((pk, alias, "en"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE actors_actor; ANALYZE actors_actoralias; ANALYZE events_place")


def document(rng: random.Random) -> str:
    article = read_document(SEED)[1]
    named = list(Actor.objects.order_by("?").values_list("name", flat=True)[:40])
    paragraph = "On 9 November 2023, in 1991 and in May 2024: " + ", ".join(named) + "."
    return (article + "\n\n" + paragraph + "\n\n" + article)[:4000]


def timed(call, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    call_command("migrate", verbosity=0)
    rng = random.Random(1)
    if Actor.objects.count() < ACTORS:
        started = time.perf_counter()
        load(rng)
        print(f"loaded in {time.perf_counter() - started:.1f} s")
    print(
        f"{Actor.objects.count():,} actors, {ActorAlias.objects.count():,} aliases, "
        f"{Place.objects.count():,} places"
    )
    reads = timed(lambda: list(found.registry_names()), 3)
    names = list(found.registry_names())
    builds = timed(lambda: found.NameIndex(names), 3)
    index = found.NameIndex(names)
    stats = index.automaton.get_stats()
    print(
        f"{index.size:,} distinct folded names; automaton {stats['nodes_count']:,} nodes, "
        f"{stats['total_size'] / 2**20:.0f} MiB"
    )
    text = document(rng)
    found.name_index()  # built once for the process
    versions = timed(found.registry_version, 50)
    finds = timed(lambda: index.find(text), 50)
    whole = timed(lambda: found.mentions(text), 50)
    result = found.mentions(text)
    print(
        f"document: {len(text):,} characters, {len(result['names'])} names, "
        f"{len(result['dates'])} dates, {len(result['quotes'])} quotes"
    )
    for label, times in [
        ("read the names (3 queries)", reads),
        ("build the automaton", builds),
        ("version check (2 queries)", versions),
        ("find the names", finds),
        ("mentions(), automaton built", whole),
    ]:
        print(f"{label:32} median {statistics.median(times):8.1f} ms  max {max(times):8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
