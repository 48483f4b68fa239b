from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    """Audit review: the reviewers' admin for every audit log (token issuances, credential URLs,
    avatar changes), the overview and its rollups, the per-user timeline, CSV export and retention.
    It reads the logs the other apps write; nothing imports it back."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = _("Audit")
