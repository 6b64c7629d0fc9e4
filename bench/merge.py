"""How long merging an actor with about 10,000 participations takes on the
benchmark database (issue: under 2 s on 1,000,000 events), and undoing it.

Run after `make bench` (or `manage.py generate_synthetic`) has filled
`.data/bench-postgres`:

    .venv/bin/python bench/merge.py [--participations 10000] [--rounds 3]

It gives an actor of its own --participations participations (once: the
synthetic data has a few hundred at most per actor), picks it and, as the
target, the busiest actor it may be merged into
(no identifier of the same scheme with another value), then alternates, in
each round: the reference, the floor any merge pays (one SQL UPDATE moving the
same participations, with every trigger it fires: event revisions, feed
entries, history), rolled back; the merge through actors.services.actor_merge
(the API's path without HTTP), committed; and its unmerge, committed, which
leaves the database as it was. Figures: docs/performance.md.
"""

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "merge-bench-only")
os.environ.setdefault("EMBEDDED_POSTGRES_DIR", str(ROOT / ".data" / "bench-postgres"))
os.environ.setdefault("EMBEDDED_DB_NAME", "eventledger")
os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT_MS", "0")
warnings.filterwarnings("ignore", message="No directory at")

import django  # noqa: E402

django.setup()

import pghistory  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402

from actors.models import Actor  # noqa: E402
from actors.services import actor_create, actor_merge, actor_unmerge  # noqa: E402
from events.models import Event, EventParticipant  # noqa: E402
from ledger.merging import MergeConflict, lock_pair  # noqa: E402


def busy_actor(wanted: int) -> None:
    """The synthetic data spreads participations thin (a few hundred at most
    per actor): give one actor of its own `wanted` of them, one per event,
    taken from other actors (once; kept for later runs)."""
    slug = f"bench-merge-{wanted}"
    if Actor.objects.filter(slug=slug).exists():
        return
    actor = actor_create(slug=slug, name=f"Bench merge {wanted}", kind="group")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE events_eventparticipant SET actor_id = %s WHERE id IN ("
            " SELECT DISTINCT ON (event_id) id FROM events_eventparticipant"
            " ORDER BY event_id, id LIMIT %s)",
            [actor.pk, wanted],
        )
    print(f"gave {slug} (id {actor.pk}) {wanted:,} participations")


def pick(wanted: int) -> tuple[Actor, Actor, int]:
    counts = list(
        EventParticipant.objects.values("actor")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("actor", "n")
    )
    record_id, n = min(counts, key=lambda pair: abs(pair[1] - wanted))
    record = Actor.objects.get(pk=record_id)
    held = dict(record.identifiers.values_list("scheme", "value"))
    for candidate_id, _ in counts:
        candidate = Actor.objects.filter(pk=candidate_id, merged_into__isnull=True).first()
        if candidate is None or candidate.pk == record.pk:
            continue
        theirs = dict(candidate.identifiers.values_list("scheme", "value"))
        if all(theirs.get(scheme, value) == value for scheme, value in held.items()):
            return record, candidate, n
    raise SystemExit("no actor to merge into")


def reference(record: Actor, into: Actor) -> float:
    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE events_eventparticipant SET actor_id = %s WHERE actor_id = %s "
                "AND NOT EXISTS (SELECT 1 FROM events_eventparticipant t WHERE t.actor_id = %s "
                "AND t.event_id = events_eventparticipant.event_id "
                "AND t.role = events_eventparticipant.role)",
                [into.pk, record.pk, into.pk],
            )
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed * 1000


def merged(record: Actor, into: Actor) -> tuple[float, float, dict]:
    started = time.perf_counter()
    with transaction.atomic(), pghistory.context(via="bench", reason="bench/merge.py"):
        locked, target = lock_pair(Actor, record.pk, into.pk)
        done = actor_merge(actor=locked, into=target)
        before_commit = time.perf_counter()
    return (before_commit - started) * 1000, (time.perf_counter() - started) * 1000, done


def unmerged(record: Actor) -> float:
    started = time.perf_counter()
    with transaction.atomic(), pghistory.context(via="bench", reason="bench/merge.py"):
        locked = Actor.objects.select_for_update().get(pk=record.pk)
        actor_unmerge(actor=locked)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participations", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    events = Event.objects.count()
    busy_actor(args.participations)
    record, into, n = pick(args.participations)
    print(
        f"{events:,} events; merging {record.slug} (id {record.pk}, {n:,} participations) "
        f"into {into.slug} (id {into.pk})"
    )
    floor, work, total, undo = [], [], [], []
    for _ in range(args.rounds):
        floor.append(reference(record, into))
        try:
            before_commit, with_commit, done = merged(record, into)
        except MergeConflict as exc:
            raise SystemExit(f"refused: {exc}") from None
        work.append(before_commit)
        total.append(with_commit)
        undo.append(unmerged(record))
        moved = {key: len(value["moved"]) for key, value in done["moved"].items()}
        dropped = {key: len(value["dropped"]) for key, value in done["moved"].items()}
    print(f"moved {moved}, dropped {dropped}")
    rows = [
        ("reference: one UPDATE of the participations", floor),
        ("merge, before the commit", work),
        ("merge, committed", total),
        ("unmerge, committed", undo),
    ]
    for label, times in rows:
        print(f"{label:46} median {statistics.median(times):8.0f} ms  max {max(times):8.0f} ms")
    ratio = statistics.median(total) / statistics.median(floor)
    print(f"ratio, merge committed to the reference: {ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
