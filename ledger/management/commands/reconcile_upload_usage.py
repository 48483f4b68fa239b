"""`manage.py reconcile_upload_usage [--user NAME ...]`: check the upload ledger against OSS.

The ledger is kept from OSS event notifications within seconds; this is the safety net. It lists
``user/`` and every registered root (``avatars/``) once with the server's own key, corrects the
ledger where it differs (a lost event, a push that never came), prints the drift it found, and
drops lapsed form reservations, old removal records and old message ids. Run it daily, outside
requests (cron), and after restoring or pruning the bucket.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from accounts.models import User
from aliyun import oss
from ledger.services.reconcile import ledger_reconcile

SHOWN = 10


class Command(BaseCommand):
    help = "Check every user's folders in OSS (or only --user ones) against the upload ledger and correct it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="USERNAME",
            help="check only this user (repeatable); default: everyone, one listing per root",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = None
        if options["user"]:
            users = list(User.objects.filter(username__in=options["user"]))
            missing = sorted(set(options["user"]) - {user.get_username() for user in users})
            if missing:
                raise CommandError(f"No such user: {', '.join(missing)}")
        try:
            report = ledger_reconcile(users=users)
        except oss.OssError as exc:
            raise CommandError(
                f"OSS refused or failed the listing: {exc.code} {exc.upstream_code}".strip()
            ) from None
        self.stdout.write(
            f"Counted {report.users} user(s): {report.objects} object(s), {filesizeformat(report.bytes)}"
            + (f"; {report.unowned} object(s) belong to no user" if report.unowned else "")
            + "."
        )
        self.stdout.write(
            f"Drift: {len(report.missing)} missing from the ledger, {len(report.gone)} no longer in OSS, "
            f"{len(report.resized)} resized; {report.usage_fixed} user total(s) corrected"
            + (
                f"; {report.reservations_expired} lapsed reservation(s) dropped"
                if report.reservations_expired
                else ""
            )
            + "."
        )
        for label, keys in (("missing", report.missing), ("gone", report.gone), ("resized", report.resized)):
            for key in sorted(keys)[:SHOWN]:
                self.stdout.write(f"  {label}: {key}")
            if len(keys) > SHOWN:
                self.stdout.write(f"  … and {len(keys) - SHOWN} more {label}")
