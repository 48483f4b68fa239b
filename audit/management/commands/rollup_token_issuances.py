"""`manage.py rollup_token_issuances`: count closed days and hours of the token issuance log into the
overview's rollups (``audit.services.issuance_rollups_update``). Run it every few minutes (cron, a
Kubernetes CronJob): the overview is exact without it, and fast with it."""

from typing import Any

from django.core.management.base import BaseCommand

from ...services import issuance_rollups_update


class Command(BaseCommand):
    help = "Roll up closed days and hours of the token issuance log for the audit overview (run every few minutes)."

    def handle(self, *args: Any, **options: Any) -> None:
        made = issuance_rollups_update()
        self.stdout.write(f"Rolled up {made.days} day(s) and {made.hours} hour(s).")
