from django.core.management.base import BaseCommand, CommandError

from events.plover import refresh_records


class Command(BaseCommand):
    help = (
        "Store the PLOVER record of every event whose stored record is marked stale or "
        "missing: what a large write (a merge, a rename of a busy actor, a bulk load) leaves "
        "to refresh. The PLOVER export is current without it, only slower. Safe to run at "
        "any time, as often as wanted (e.g. every minute); see docs/plover.md."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild",
            action="store_true",
            help="Build every event's record again (after a migration changed their form).",
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=1_000,
            help="Events per transaction (each holds the lock every commit takes: about "
            "0.1 s per 1,000 events).",
        )

    def handle(self, *args, rebuild: bool, batch: int, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        verbosity = options["verbosity"]

        def progress(done: int) -> None:
            if verbosity > 1:
                self.stdout.write(f"{done:,} records built")

        built = refresh_records(rebuild=rebuild, batch=batch, progress=progress)
        if verbosity:
            self.stdout.write(f"Built {built:,} PLOVER records.")
