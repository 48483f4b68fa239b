"""`manage.py reconcile_upload_usage [--user NAME ...]`: count what users' folders hold in OSS.

Lists ``user/`` and every registered root (``avatars/``) once with the server's own key and stores
each user's bytes and objects, replacing the server's running estimate (form uploads counted at
their declared size). Run it daily, e.g. from cron, and after restoring or pruning the bucket.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.template.defaultfilters import filesizeformat

from accounts.models import User
from aliyun import oss
from uploads.services.quota import UsageCount, upload_usage_reconcile, upload_usage_recount


class Command(BaseCommand):
    help = "Count every user's folders in OSS (or only --user ones) and store it as their upload usage."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="USERNAME",
            help="count only this user (repeatable); default: everyone, one listing per root",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["user"]:
                count = self._some(options["user"])
            else:
                count = upload_usage_reconcile()
        except oss.OssError as exc:
            raise CommandError(
                f"OSS refused or failed the listing: {exc.code} {exc.upstream_code}".strip()
            ) from None
        self.stdout.write(
            f"Counted {count.users} user(s): {count.objects} object(s), {filesizeformat(count.bytes)}"
            + (f"; {count.unowned} object(s) belong to no user" if count.unowned else "")
            + "."
        )

    def _some(self, usernames: list[str]) -> UsageCount:
        users = list(User.objects.filter(username__in=usernames))
        missing = sorted(set(usernames) - {user.get_username() for user in users})
        if missing:
            raise CommandError(f"No such user: {', '.join(missing)}")
        counts = [upload_usage_recount(user=user) for user in users]
        return UsageCount(
            users=len(counts),
            objects=sum(c.objects for c in counts),
            bytes=sum(c.bytes for c in counts),
        )
