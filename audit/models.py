"""The audit's own tables: rollups of the token issuance log for the overview.

The audit rows themselves belong to the apps that write them (``uploads.TokenIssuance``,
``avatars.AvatarChange``); this app reviews them.
"""

from django.db import models
from django.utils import timezone

# --- Rollups for the overview: what the audit rows of each closed day add up to -------------------
# Written by audit/services.py (the rollup_token_issuances command, run every few minutes), read by the
# overview (audit/selectors.py): a closed day's rows no longer change, so the overview reads a few rows
# per day instead of every audit row. Deleting rollups is always safe: the overview then reads the rows
# of those days, and the next run counts them again. The tables keep the names they had in uploads.


class IssuanceRollup(models.Model):
    """One closed day (in ``time_zone``, the site's ``TIME_ZONE`` when it was counted) is summarised."""

    day = models.DateField()
    time_zone = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "uploads_issuancerollup"
        constraints = [
            models.UniqueConstraint(fields=["time_zone", "day"], name="issuance_rollup_zone_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} ({self.time_zone})"


class _OutcomeCounts(models.Model):
    issued = models.PositiveBigIntegerField(default=0)
    reused = models.PositiveBigIntegerField(default=0)
    refused = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)

    class Meta:
        abstract = True


class IssuanceRollupUser(_OutcomeCounts):
    """One user's issuances on a rolled-up day, by outcome, and how many client IPs they came from."""

    rollup = models.ForeignKey(IssuanceRollup, on_delete=models.CASCADE, related_name="users")
    username = models.CharField(max_length=150)
    client_ips = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "uploads_issuancerollupuser"
        constraints = [
            models.UniqueConstraint(fields=["rollup", "username"], name="issuance_rollup_user"),
        ]

    def __str__(self) -> str:
        return f"{self.username} on {self.rollup_id}"


class IssuanceRollupHour(_OutcomeCounts):
    """All users' issuances in one hour of a rolled-up day, by outcome."""

    rollup = models.ForeignKey(IssuanceRollup, on_delete=models.CASCADE, related_name="hours")
    hour = models.DateTimeField()

    class Meta:
        db_table = "uploads_issuancerolluphour"
        constraints = [
            models.UniqueConstraint(fields=["rollup", "hour"], name="issuance_rollup_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:%M %Z}"


class IssuanceRollupHourUser(_OutcomeCounts):
    """One user's issuances in one closed hour of a day not rolled up yet (today), with up to
    ``ADDRESS_SAMPLE`` of their client IPs, so today's part of the overview reads a few rows per hour
    instead of every row of the day. A row with an empty username marks an hour as rolled up."""

    time_zone = models.CharField(max_length=64)
    hour = models.DateTimeField()
    username = models.CharField(max_length=150, blank=True)
    addresses = models.JSONField(default=list)

    class Meta:
        db_table = "uploads_issuancerolluphouruser"
        constraints = [
            models.UniqueConstraint(
                fields=["time_zone", "hour", "username"], name="issuance_rollup_hour_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.username or '(hour done)'} at {self.hour:%Y-%m-%d %H:%M %Z}"
