from pathlib import Path

import pghistory
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.documents import DocumentError, load_document

FIXTURES_DIR = Path(settings.BASE_DIR) / "fixtures"


class Command(BaseCommand):
    help = (
        "Load source documents with their annotations (<name>.txt with <name>.yaml). "
        "Without arguments, loads every document in fixtures/. Loading is idempotent: "
        "a document already stored gets its annotation applied again, which changes "
        "nothing unless the annotation was corrected. On any error nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("documents", nargs="*", type=Path, help="Document .txt files.")

    def handle(self, *args, documents: list[Path], **options):
        documents = documents or sorted(FIXTURES_DIR.glob("*.txt"))
        if not documents:
            raise CommandError(f"No documents to load in {FIXTURES_DIR}.")
        for document in documents:
            if not document.is_file():
                raise CommandError(f"{document}: no such file.")
            try:
                with pghistory.context(via="seed", command="seed", document=document.name):
                    result = load_document(document)
            except DocumentError as exc:
                raise CommandError(f"{document.name}: nothing was loaded. {exc}") from None
            if result.created:
                counts = ", ".join(f"{n} {name}" for name, n in result.counts.items())
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{document.name}: loaded as source {result.source.pk}: {counts}."
                    )
                )
            elif result.updated or result.deleted or any(result.counts.values()):
                created = sum(result.counts.values())
                self.stdout.write(
                    self.style.SUCCESS(
                        f"{document.name}: already loaded as source {result.source.pk}; its "
                        f"corrected annotation was applied: {len(result.updated)} updated, "
                        f"{created} created, {len(result.deleted)} deleted."
                    )
                )
            elif result.annotation_changed:
                self.stdout.write(
                    self.style.WARNING(
                        f"{document.name}: already loaded as source {result.source.pk}, from "
                        "another version of its annotation, before the service kept annotations: "
                        "the changes were NOT applied. Correct the records through the API or "
                        "the admin, or load it into a new database."
                    )
                )
            else:
                self.stdout.write(
                    f"{document.name}: already loaded as source {result.source.pk}; "
                    "nothing changed."
                )
