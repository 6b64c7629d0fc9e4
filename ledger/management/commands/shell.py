import pghistory
from django.core.management.commands import shell


class Command(shell.Command):
    """Django's shell, with every write it makes recorded in history as made
    through the shell."""

    def handle(self, **options):
        with pghistory.context(via="shell", command="shell"):
            return super().handle(**options)
