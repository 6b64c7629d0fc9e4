import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from events.models import Event
from events.plover import refresh_records
from events.synthetic import TABLES, Batch, SyntheticData
from ledger.bulk import BulkLoader, BulkLoadError, rebuild_indexes


def generated(data: SyntheticData, sizes: list[int]) -> Iterator[Batch]:
    """The batches, each generated in a second thread while the one before is
    being loaded (the database does its share meanwhile, on the other core)."""

    def make(size: int) -> Batch:
        try:
            return data.batch(size)
        finally:
            connection.close()  # the thread's own connection, for reserving ids

    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(make, sizes[0])
        for size in sizes[1:]:
            batch = upcoming.result()
            upcoming = pool.submit(make, size)
            yield batch
        yield upcoming.result()


class Command(BaseCommand):
    help = (
        "Add a deterministic synthetic dataset: EVENTS events with about EVENTS/10 actors, "
        "EVENTS/100 places, a news report per 10 events, 2 statements per report, and the "
        "evidence spans they cite. Loaded in batches through COPY; each batch is one "
        "transaction with one history context (via: import). See docs/performance.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, required=True, help="How many events to add.")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same data.")
        parser.add_argument("--batch-size", type=int, default=50_000, help="Events per batch.")
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="Do nothing when the database already holds at least EVENTS events.",
        )
        parser.add_argument(
            "--rebuild-indexes",
            choices=["auto", "yes", "no"],
            default="auto",
            help="Drop secondary indexes during the load and rebuild them after, all in one "
            "transaction that locks the tables (auto: when the load at least doubles the "
            "events table). Otherwise each batch is a transaction of its own.",
        )

    def handle(self, *args, events: int, seed: int, batch_size: int, reuse: bool, **options):
        if events < 1 or batch_size < 1:
            raise CommandError("--events and --batch-size must be at least 1.")
        present = Event.objects.count()
        if reuse and present >= events:
            self.stdout.write(f"The database holds {present} events; nothing to do.")
            return
        rebuild = options["rebuild_indexes"] == "yes" or (
            options["rebuild_indexes"] == "auto" and events >= present
        )
        data = SyntheticData(seed)
        loader = BulkLoader(
            TABLES, metadata={"command": "generate_synthetic", "seed": seed, "events": events}
        )
        totals: dict[str, int] = {}
        started = time.perf_counter()
        tables = [t.name for t in TABLES] + [t.snapshot_table for t in TABLES] + ["events_change"]
        try:
            with (
                transaction.atomic() if rebuild else contextlib.nullcontext(),
                rebuild_indexes(tables) if rebuild else contextlib.nullcontext([]) as dropped,
            ):
                if dropped:
                    self.stdout.write(f"Dropped {len(dropped)} secondary indexes for the load.")
                sizes = [min(batch_size, events - n) for n in range(0, events, batch_size)]
                done = 0
                in_database = 0.0  # time spent in the loader: the import itself
                for size, batch in zip(sizes, generated(data, sizes), strict=True):
                    mark = time.perf_counter()
                    counts = loader.load(batch.rows)
                    in_database += time.perf_counter() - mark
                    for name, count in counts.items():
                        totals[name] = totals.get(name, 0) + count
                    done += size
                    self.stdout.write(
                        f"batch {loader.batches}: {done:,} events "
                        f"({done / (time.perf_counter() - started):,.0f}/s)"
                    )
                loaded = time.perf_counter() - started
                if dropped:
                    self.stdout.write("Rebuilding the indexes ...")
        except BulkLoadError as exc:
            raise CommandError(str(exc)) from None
        if not connection.in_atomic_block:
            # Set the new rows' visibility and hint bits now, rather than leave it
            # to autovacuum and the first readers, which would then do it
            # while serving.
            self.stdout.write("Vacuuming the loaded tables ...")
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")
                for table in tables:
                    cursor.execute(f'VACUUM (ANALYZE) "{table}"')
                cursor.execute("RESET statement_timeout")
        elapsed = time.perf_counter() - started
        # The bulk loader writes no marks (its row triggers are off): the new
        # events have no stored PLOVER record yet, and the export would build
        # each as it reads it.
        self.stdout.write("Storing the PLOVER records ...")
        mark = time.perf_counter()
        stored = refresh_records(batch=10_000)
        storing = time.perf_counter() - mark
        summary = ", ".join(f"{n:,} {t}" for t, n in totals.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {events:,} events in {elapsed:.1f} s ({events / elapsed:,.0f} events/s; "
                f"{events / loaded:,.0f}/s before the index rebuild; the loader's own "
                f"{in_database:.1f} s, {events / in_database:,.0f} events/s, while the next "
                f"batch was generated alongside): {summary}. Then {stored:,} PLOVER records "
                f"stored in {storing:.1f} s ({stored / max(storing, 1e-9):,.0f}/s)."
            )
        )
