"""`manage.py prune_token_issuances --older-than-days N`: the audit log's retention policy
(``audit.services.token_issuances_prune`` deletes in batches)."""

from argparse import ArgumentTypeError
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from uploads.models import TokenIssuance

from ...services import token_issuances_prune


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class Command(BaseCommand):
    help = "Delete token issuance audit rows older than N days, in batches (run it daily, e.g. from cron)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than-days", type=_at_least_one, required=True, help="keep the last N days"
        )
        parser.add_argument(
            "--batch-size", type=_at_least_one, default=5000, help="rows deleted per transaction (5000)"
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size: int = options["batch_size"]
        cutoff = timezone.now() - timedelta(days=options["older_than_days"])
        expired = TokenIssuance.objects.filter(created_at__lt=cutoff)
        when = f"created before {cutoff:%Y-%m-%d %H:%M:%S} UTC"

        if options["dry_run"]:
            self.stdout.write(f"Would delete {expired.count()} token issuance(s) {when}.")
            return

        def progress(batch: int, count: int, total: int) -> None:
            if options["verbosity"] >= 2:
                self.stdout.write(f"Batch {batch}: deleted {count} (total {total}).")

        pruned = token_issuances_prune(before=cutoff, batch_size=batch_size, progress=progress)
        self.stdout.write(f"Deleted {pruned.rows} token issuance(s) {when} in {pruned.batches} batch(es).")
